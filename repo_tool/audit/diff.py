"""What changed between two snapshots of one repository's metadata, for signing off a publish.

Both snapshots are loaded and fully verified (signatures, hashes, versions; expiry is
only reported, so an old, expired snapshot can still be compared).  The trust anchor is
the given root, or else each snapshot's own ``1.root.json`` (which proves the chain
is intact, not that it is the right repository; the result says so).  The diff covers
role versions and expiries, the root chain (keys and thresholds per role for each new
root: key rotation), the targets list (length, sha256, custom data) and, when a
targets location is given, ``manifest.json`` (updates, waves, max_version, migrations).

:func:`load_side` does the I/O, :func:`diff` is pure; :class:`AuditDiff` has a stable
JSON form and a text form.

Size: just over 450 lines, the loading, the pure diff and its two renderings of one concept; the
architecture issue (16) may move the text rendering beside the CLI.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repo_tool.aws import AwsSettings
from repo_tool.core.instant import format_instant
from repo_tool.core.manifest import Manifest, Update, migration_key_text
from repo_tool.errors import ManifestError, RepoToolError, UsageError, VerificationError
from repo_tool.localfs import stat_or_none
from repo_tool.storage import open_storage
from repo_tool.storage.base import LocalStorage
from repo_tool.trust.metadata import MIB, TOP_ROLES, RoleFile
from repo_tool.trust.verifier import Repo, Source, load_repo, read_target

MANIFEST = "manifest.json"
ROLE_ORDER = ("root", "timestamp", "snapshot", "targets")
ANCHOR_FILE = "1.root.json"


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
            data = read_target(repo, targets, MANIFEST)
            if data is None:
                note = f"{MANIFEST} is not listed"
            else:
                try:
                    manifest = Manifest.from_bytes(data)
                except ManifestError as exc:  # it verified, so this is a published, broken file
                    raise VerificationError(f"{MANIFEST}: {exc.message}") from None
    except RepoToolError as exc:
        raise exc.within(f"{label} {meta.url}") from None
    return Side(label, meta.url, trusted_name, own, repo, manifest, note)


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

    def text(self) -> list[str]:
        return _text(self)


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
    for role in sorted(TOP_ROLES, key=ROLE_ORDER.index):
        old_def, new_def = _role_def(previous, role), _role_def(root, role)
        old_ids, new_ids = set(old_def[0]), set(new_def[0])
        if new_ids - old_ids:
            change.keys_added[role] = [_key_info(root, k) for k in sorted(new_ids - old_ids)]
        if old_ids - new_ids:
            change.keys_removed[role] = [_key_info(previous, k) for k in sorted(old_ids - new_ids)]
        if old_def[1] != new_def[1]:
            change.thresholds[role] = (old_def[1], new_def[1])
    return change


def _role_def(root: RoleFile, role: str) -> tuple[list[str], int]:
    entry = root.signed["roles"][role]  # shape checked when the root was verified
    return [k.lower() for k in entry["keyids"]], int(entry["threshold"])


def _key_info(root: RoleFile, keyid: str) -> dict[str, str]:
    keys: Mapping[str, Any] = {k.lower(): v for k, v in root.signed["keys"].items()}
    entry = keys.get(keyid)
    if not isinstance(entry, Mapping):
        return {"keyid": keyid, "keytype": "?", "scheme": "?"}
    return {"keyid": keyid, "keytype": str(entry.get("keytype")), "scheme": str(entry.get("scheme"))}


def _targets(repo: Repo) -> dict[str, Listing]:
    """Every listed target (top-level and delegated roles) as its length, sha256 and custom data."""
    result: dict[str, Listing] = {}
    for role_file in [repo.targets, *repo.delegated.values()]:
        listed = role_file.signed.get("targets")
        for name, value in (listed.items() if isinstance(listed, dict) else []):
            entry = value if isinstance(value, dict) else {}
            hashes = entry.get("hashes")
            sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
            length = entry.get("length")
            result.setdefault(name, Listing(length if isinstance(length, int) and not isinstance(length, bool)
                                            else None, sha256.lower() if isinstance(sha256, str) else None,
                                            entry.get("custom")))
    return result


# --- JSON and text -------------------------------------------------------------------------


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


def _version_text(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _expires_text(expires: int | None) -> str:
    return "-" if expires is None else format_instant(expires)


def _listing_text(entry: Listing) -> str:
    return f"{entry.length} bytes, sha256 {entry.sha256}"


def _json_text(value: Any) -> str:
    return "none" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _update_text(update: Update) -> str:
    return f"{update.variant} {update.arch} {update.version}"


def _text(result: AuditDiff) -> list[str]:
    old, new = result.old, result.new
    lines = [f"OLD: {old.metadata_url}", f"NEW: {new.metadata_url}"]
    for side in (old, new):
        where = (f"{side.anchor}, the snapshot's own root (it proves the chain intact, not which repository "
                 "this is; pass --root to anchor both in a trusted root)" if side.own_anchor else side.anchor)
        lines.append(f"{side.label} trust anchor: {where}")
        if side.repo.expired:
            lines.append(f"{side.label} expired: {', '.join(sorted(set(side.repo.expired)))}")
    lines += ["", "roles:"]
    width = max(len(r.role) for r in result.roles)
    for change in result.roles:
        name = f"{change.role:<{width}}"
        if not change.changed:
            lines.append(f"  {name}  {_version_text(change.new_version)} (unchanged), expires "
                         f"{_expires_text(change.new_expires)}")
            continue
        lines.append(f"  {name}  {_version_text(change.old_version)} -> {_version_text(change.new_version)}, "
                     f"expires {_expires_text(change.old_expires)} -> {_expires_text(change.new_expires)}")

    lines += ["", f"root chain: OLD {_chain(old)}, NEW {_chain(new)}"]
    for differing in result.roots_differ:
        lines.append(f"  ! root v{differing} differs between OLD and NEW (not snapshots of one repository?)")
    if result.roots_removed:
        lines.append(f"  ! root versions in OLD but not NEW: {', '.join(f'v{v}' for v in result.roots_removed)}")
    for root in result.roots_added:
        against = f"against v{root.previous}" if root.previous is not None else "(no previous root to compare)"
        lines.append(f"  + root v{root.version}, expires {format_instant(root.expires)}, {against}:")
        if root.previous is not None and not root.rotates:
            lines.append("      keys and thresholds unchanged")
        for role in ROLE_ORDER:
            for key in root.keys_added.get(role, []):
                lines.append(f"      {role}: + key {key['keyid']} ({key['keytype']}, {key['scheme']})")
            for key in root.keys_removed.get(role, []):
                lines.append(f"      {role}: - key {key['keyid']} ({key['keytype']}, {key['scheme']})")
            if role in root.thresholds:
                before, after = root.thresholds[role]
                lines.append(f"      {role}: threshold {before} -> {after}")

    counts = (f"{len(result.targets_added)} added, {len(result.targets_removed)} removed, "
              f"{len(result.targets_changed)} changed")
    lines += ["", f"targets: {counts}"]
    lines += [f"  + {target} ({_listing_text(entry)})" for target, entry in result.targets_added.items()]
    lines += [f"  - {target} ({_listing_text(entry)})" for target, entry in result.targets_removed.items()]
    for target, (was, now) in result.targets_changed.items():
        parts = []
        if was.length != now.length:
            parts.append(f"length {was.length} -> {now.length}")
        if was.sha256 != now.sha256:
            parts.append(f"sha256 {was.sha256} -> {now.sha256}")
        if was.custom != now.custom:
            parts.append(f"custom {_json_text(was.custom)} -> {_json_text(now.custom)}")
        lines.append(f"  ~ {target}: {', '.join(parts)}")

    lines.append("")
    lines += _manifest_text(result)
    lines += ["", "changes found" if result.changed else "no changes"]
    return lines


def _chain(side: Side) -> str:
    return ", ".join(f"v{r.version}" for r in side.repo.roots)


def _manifest_text(result: AuditDiff) -> list[str]:
    notes = [f"{side.label}: {side.manifest_note}" for side in (result.old, result.new) if side.manifest_note]
    if result.manifest is None:
        if result.old.manifest_note == result.new.manifest_note:
            notes = [result.new.manifest_note or "not compared"]
        return [f"manifest: {'; '.join(notes)}; only metadata was compared"]
    change = result.manifest
    lines = ["manifest:" + (f" ({'; '.join(notes)})" if notes else "") + ("" if change.changed else " unchanged")]
    lines += [f"  + update {_update_text(u)}" for u in change.updates_added]
    lines += [f"  - update {_update_text(u)}" for u in change.updates_removed]
    for update, before, after in change.waves:
        lines.append(f"  ~ waves of {_update_text(update)}:")
        for seed in sorted(set(before) | set(after)):
            if before.get(seed) != after.get(seed):
                lines.append(f"      seed {seed}: {_expires_text(before.get(seed))} -> "
                             f"{_expires_text(after.get(seed))}")
    lines += [f"  ~ max_version of {_update_text(u)}: {old} -> {new}" for u, old, new in change.max_versions]
    lines += [f"  + migration {key}: {', '.join(names)}" for key, names in change.migrations_added.items()]
    lines += [f"  - migration {key}: {', '.join(names)}" for key, names in change.migrations_removed.items()]
    lines += [f"  ~ migration {key}: {', '.join(old)} -> {', '.join(new)}"
              for key, (old, new) in change.migrations_changed.items()]
    return lines
