"""The text form of an ``audit-diff`` result (:class:`~repo_tool.audit.diff.AuditDiff`), for a reviewer.

One list of lines: both trust anchors, roles, the root chain and key rotations, targets, the
manifest, and "changes found" or "no changes".  Must not: compute differences (they are in the
AuditDiff) or print (the CLI does).
"""

from __future__ import annotations

import json
from typing import Any

from repo_tool.audit.diff import ROLE_ORDER, AuditDiff, Listing, Side
from repo_tool.core.instant import format_instant
from repo_tool.core.manifest import Update
from repo_tool.core.rollout import when_text


def _version_text(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _expires_text(expires: int | None) -> str:
    return "-" if expires is None else format_instant(expires)


def _wave_text(start: int | None) -> str:
    return "-" if start is None else when_text(start)


def _listing_text(entry: Listing) -> str:
    return f"{entry.length} bytes, sha256 {entry.sha256}"


def _json_text(value: Any) -> str:
    return "none" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def _update_text(update: Update) -> str:
    return f"{update.variant} {update.arch} {update.version}"


def text_lines(result: AuditDiff) -> list[str]:
    """The whole result for a reviewer, one line an item (the CLI joins and prints them)."""
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
                lines.append(f"      seed {seed}: {_wave_text(before.get(seed))} -> {_wave_text(after.get(seed))}")
    lines += [f"  ~ max_version of {_update_text(u)}: {old} -> {new}" for u, old, new in change.max_versions]
    lines += [f"  + migration {key}: {', '.join(names)}" for key, names in change.migrations_added.items()]
    lines += [f"  - migration {key}: {', '.join(names)}" for key, names in change.migrations_removed.items()]
    lines += [f"  ~ migration {key}: {', '.join(old)} -> {', '.join(new)}"
              for key, (old, new) in change.migrations_changed.items()]
    return lines
