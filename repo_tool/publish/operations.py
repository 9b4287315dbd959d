"""Publishing operations on variant/arch repositories (SPEC §10.2, §10.4).

Every operation has the same shape: a verified load of the live repository
(or an explicit ``init``), an edit of the target list and ``manifest.json``,
new signed metadata, a self-check, and then — unless only a plan was asked
for — the ordered, atomic write of SPEC §4.  Everything that can fail (bad
input, missing keys, unmet thresholds, an expired repository, a wrong trusted
root) fails before the first byte is written.  Every edit also goes through the
migration chain invariant (:func:`check_chain`).

Size: about 580 lines, the publisher's operations (publish, publish-release, refresh, rollout,
pulls) over the one load/edit/:func:`finish` shape they share; the architecture issue (16) gives them
a package of their own (a module each, over a shared core).
"""

from __future__ import annotations

import difflib
import hashlib
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repo_tool.config import RepoConfig
from repo_tool.core.chain import check_edit
from repo_tool.core.instant import format_instant, format_whole_seconds, parse_instant
from repo_tool.core.manifest import EMPTY_MANIFEST_BYTES, Images, Manifest, MigrationKey
from repo_tool.core.rollout import (
    PAUSED_AT,
    halted_waves,
    is_paused,
    offered_regardless,
    paused_waves,
    resumed_waves,
)
from repo_tool.core.semver import Version
from repo_tool.core.waves import WavePolicy
from repo_tool.errors import (
    ConfigError,
    ManifestError,
    MigrationError,
    RepoToolError,
    UsageError,
    VerificationError,
)
from repo_tool.hashing import FileDigest, hash_files
from repo_tool.localfs import stat_or_none
from repo_tool.publish.editor import (
    MANIFEST,
    TIMESTAMP,
    NewTarget,
    Plan,
    Progress,
    RepoEditor,
    write_plan,
)
from repo_tool.signing.signers import role_signers
from repo_tool.storage import open_storage
from repo_tool.storage.base import Storage
from repo_tool.trust.metadata import SIZE_LIMITS, RoleFile, check_safe_name, parse_role
from repo_tool.trust.verifier import (
    ExpiredError,
    Repo,
    RepoMissingError,
    load_repo,
    read_target,
    verify_next_root,
    verify_trusted_root,
)

CUSTOM_KEY = "repo-tool"


@dataclass
class Location:
    """The metadata storage of one variant/arch and the shared targets storage."""

    config: RepoConfig
    variant: str
    arch: str
    meta: Storage
    targets: Storage

    @classmethod
    def of(cls, config: RepoConfig, variant: str, arch: str) -> Location:
        check_safe_name(variant, "variant")
        check_safe_name(arch, "arch")
        meta = open_storage(config.metadata_url, config.base_dir, config.aws).child(variant, arch)
        targets = open_storage(config.targets_url, config.base_dir, config.aws)
        return cls(config, variant, arch, meta, targets)


@dataclass
class Outcome:
    """What an operation did (or, for a plan, would do)."""

    location: Location
    plan: Plan
    manifest_before: bytes
    manifest_after: bytes
    waves: dict[int, int] | None = None
    warnings: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    planned_only: bool = True

    def manifest_diff(self) -> list[str]:
        before = self.manifest_before.decode().splitlines()
        after = self.manifest_after.decode().splitlines()
        return list(difflib.unified_diff(before, after, "manifest.json (live)", "manifest.json (new)", lineterm=""))

    def to_json(self) -> dict[str, Any]:
        loc = self.location
        return {
            "repo": loc.config.name,
            "variant": loc.variant,
            "arch": loc.arch,
            "metadata_url": loc.meta.url,
            "targets_url": loc.targets.url,
            "planned_only": self.planned_only,
            "signed": self.plan.signed,
            "targets_added": [
                {"name": t.name, "length": t.length, "sha256": t.sha256, "object": t.object_name}
                for t in self.plan.targets
            ],
            "roots_added": [name for name, _ in self.plan.roots],
            "versions": self.plan.versions,
            "expires": {role: format_whole_seconds(ns) for role, ns in self.plan.expires.items()},
            "waves": {str(k): format_instant(v) for k, v in sorted(self.waves.items())}
            if self.waves is not None
            else None,
            "manifest_changed": self.manifest_before != self.manifest_after,
            "written": self.written,
            "warnings": self.warnings,
        }


@dataclass
class Loaded:
    location: Location
    repo: Repo | None
    root: RoleFile
    new_roots: list[RoleFile]
    manifest_bytes: bytes
    warnings: list[str] = field(default_factory=list)

    def manifest(self) -> Manifest:
        try:
            return Manifest.from_bytes(self.manifest_bytes)
        except ManifestError as exc:
            raise exc.within(f"{self.location.meta.url} manifest.json") from None


def load_live(location: Location, now: int, *, init: bool = False, allow_expired: bool = False,
              new_manifest: bool = False, new_root_files: list[Path] | None = None,
              read_manifest: bool = True) -> Loaded:
    """Verified load of the live repository (or the checks for ``init``), plus any new roots.
    ``read_manifest`` False skips downloading ``manifest.json`` (for edits that leave it alone)."""
    config = location.config
    trusted_raw = config.read_root()
    given_roots = _read_roots(new_root_files or [])
    warnings: list[str] = []
    if init:
        meta = location.meta
        if meta.size(TIMESTAMP) is not None:
            raise UsageError(f"--init: {meta.describe(TIMESTAMP)} exists; this repository is already initialised")
        root = verify_trusted_root(trusted_raw, str(config.root))
        for version in range(1, root.version + 1):
            stored = meta.read(f"{version}.root.json", SIZE_LIMITS["root"])
            if stored is not None and (version != root.version or stored != root.raw):
                # Same bytes: the leftover of an init that failed later on; it is reused.
                raise UsageError(f"--init: {meta.describe(f'{version}.root.json')} exists; "
                                 "this repository is already initialised")
        if root.version != 1:
            warnings.append(f"the trusted root is version {root.version}; versions 1..{root.version - 1} "
                            "cannot be published by init, so clients must start from this root")
        repo: Repo | None = None
        new_roots = [root]
        manifest_bytes = EMPTY_MANIFEST_BYTES
    else:
        try:
            repo = load_repo(location.meta, trusted_raw, now, safe=not allow_expired,
                             trusted_root_name=str(config.root), unreachable_ends_walk=False)
        except RepoMissingError as exc:
            raise RepoMissingError(f"{exc.message}; pass --init to start a new repository") from None
        except ExpiredError as exc:
            raise ExpiredError(f"{exc.message} (refresh the repository, or pass --allow-expired to load it anyway)"
                               ) from None
        except VerificationError:
            repo = _resume_rotation(location, trusted_raw, now, allow_expired, given_roots)
            if repo is None:
                raise
            warnings.append("resuming a root rotation whose new root was published without its metadata")
        root = repo.root
        new_roots = _unpublished_roots(location.meta, repo.roots)
        if repo.expired:
            warnings.append(f"loaded although expired: {', '.join(repo.expired)} (--allow-expired)")
        data = read_target(repo, location.targets, MANIFEST) if read_manifest else EMPTY_MANIFEST_BYTES
        if data is None:
            if not new_manifest:
                raise VerificationError(
                    f"{location.meta.url}: the repository lists no manifest.json target; "
                    "pass --new-manifest to start one"
                )
            data = EMPTY_MANIFEST_BYTES
        manifest_bytes = data
    for path, raw in given_roots:
        root = verify_next_root(root, raw, str(path))
        new_roots.append(root)
    return Loaded(location, repo, root, new_roots, manifest_bytes, warnings)


def _read_roots(paths: list[Path]) -> list[tuple[Path, bytes]]:
    result = []
    for path in paths:
        try:
            result.append((path, path.read_bytes()))
        except OSError as exc:
            raise UsageError(f"--root-role {path}: cannot read: {exc.strerror}") from None
    return result


def _resume_rotation(location: Location, trusted_raw: bytes, now: int, allow_expired: bool,
                     given_roots: list[tuple[Path, bytes]]) -> Repo | None:
    """A rotation that died after writing ``N.root.json`` but before ``timestamp.json`` leaves
    metadata the new root does not sign.  If the roots on storage past the old root are exactly
    the ``--root-role`` files given again, load as of the old root so the rerun completes it."""
    if not given_roots:
        return None
    versions = []
    for path, raw in given_roots:
        try:
            versions.append(parse_role(raw, "root", str(path)).version)
        except VerificationError:
            return None
    on_storage = [v for v, (_, raw) in zip(versions, given_roots)
                  if location.meta.read(f"{v}.root.json", SIZE_LIMITS["root"]) == raw]
    if not on_storage or location.meta.size(f"{max(versions) + 1}.root.json") is not None:
        return None
    if any(location.meta.read(f"{v}.root.json", SIZE_LIMITS["root"]) not in (None, raw)
           for v, (_, raw) in zip(versions, given_roots)):
        return None
    return load_repo(location.meta, trusted_raw, now, safe=not allow_expired,
                     trusted_root_name=str(location.config.root), max_root_version=min(versions) - 1,
                     unreachable_ends_walk=False)


def _unpublished_roots(meta: Storage, roots: list[RoleFile]) -> list[RoleFile]:
    """The trusted root, if its ``N.root.json`` is not on storage (roots after it were read from
    storage by the load).  It must be what storage's chain leads to: identical to the stored copy,
    or, when missing and N > 1, signed by the published (N-1).root.json, or clients would fail."""
    trusted = roots[0]
    name = f"{trusted.version}.root.json"
    stored = meta.read(name, SIZE_LIMITS["root"])
    if stored is not None:
        if stored != trusted.raw:
            raise VerificationError(f"{meta.describe(name)} differs from the trusted root of the same version")
        return []
    if trusted.version > 1:
        previous_name = f"{trusted.version - 1}.root.json"
        previous = meta.read(previous_name, SIZE_LIMITS["root"])
        if previous is None:
            raise VerificationError(
                f"{meta.describe(name)} and {previous_name} are not published; "
                "publish the whole root chain from 1.root.json (or use the published root as trusted)"
            )
        verify_next_root(parse_role(previous, "root", meta.describe(previous_name)), trusted.raw,
                         f"trusted root v{trusted.version}")
    return [trusted]


def finish(loaded: Loaded, editor: RepoEditor, manifest: Manifest | None, start: int, write: bool,
           waves: dict[int, int] | None = None, progress: Progress | None = None,
           manifest_custom: dict[str, Any] | None = None, now: int | None = None,
           defer_write: bool = False, chain_hint: str = "", allow_broken_chain: bool = False) -> Outcome:
    """Put the (edited) manifest in, sign everything, and write unless this is a plan.  An edit
    that would leave nodes unable to follow the migration chain is refused (:func:`check_chain`)."""
    location = loaded.location
    after = loaded.manifest_bytes
    chain_warnings: list[str] = []
    if manifest is not None:
        manifest.validate()
        after = manifest.to_bytes()
        if after != loaded.manifest_bytes:
            chain_warnings = check_chain(loaded.manifest(), manifest, chain_hint, allow_broken_chain)
    if manifest is not None and (
        after != loaded.manifest_bytes or loaded.repo is None or MANIFEST not in editor.targets
    ):
        editor.add_target(NewTarget(MANIFEST, len(after), hashlib.sha256(after).hexdigest(), after), replace=True)
    if manifest_custom is not None:
        editor.set_custom(MANIFEST, manifest_custom or None)
    # A plan loads every key it would use (KMS: the public key and state, no signing) and checks the
    # thresholds, so it fails where the real run would; it signs nothing.
    signers = role_signers(location.config)
    plan = editor.build(signers, start, location.config.expirations, start if now is None else now,
                        location.meta, sign=write)
    outcome = Outcome(location, plan, loaded.manifest_bytes, after, waves, list(loaded.warnings) + chain_warnings)
    if write and not defer_write:
        outcome.written = write_plan(plan, location.meta, location.targets, progress)
        outcome.planned_only = False
    return outcome


RELEASE_TOML_HINT = "add that step to Release.toml (--release-config; release_config: in a publish-release file)"
PULL_HINT = ("nodes would be sent along it, fail the walk and stay where they are; choose another version, or pass "
             "--allow-broken-chain to pull anyway (an emergency pull of a bad release)")


def check_chain(before: Manifest, after: Manifest, hint: str = "", allow_broken: bool = False) -> list[str]:
    """Refuse an edit that breaks the migration chain nodes walk (SPEC §8.3; see
    :mod:`repo_tool.core.chain`); return a warning for each break that was there before it (and, with
    ``allow_broken``, for each one it causes)."""
    result = check_edit(before, after)
    if result.caused and not allow_broken:
        first = max(result.caused, key=lambda b: (b.high, b.low))  # the nearest pair names the missing step
        more = f" (and {len(result.caused) - 1} more pair(s))" if len(result.caused) > 1 else ""
        raise MigrationError(f"refusing a manifest nodes cannot follow: {first.describe()}{more}; "
                             f"{hint or RELEASE_TOML_HINT}")
    return ([f"migration chain broken by this edit (--allow-broken-chain): {b.describe()}" for b in result.caused]
            + [f"migration chain already broken: {b.describe()}" for b in result.existing])


# --- publish ---------------------------------------------------------------------------------


@dataclass
class ReleaseImages:
    variant: str
    arch: str
    boot: Path
    root: Path
    hash: Path
    link_targets: list[Path] = field(default_factory=list)
    copy_targets: list[Path] = field(default_factory=list)

    def files(self) -> list[Path]:
        return [*self.copy_targets, *self.link_targets, self.boot, self.root, self.hash]

    def decoded_by_nodes(self, migrations: dict[MigrationKey, list[str]] | None) -> list[Path]:
        """The files nodes decode as LZ4 frames: the three images, and the extra targets that
        Release.toml names as migrations (SPEC §8.4)."""
        named = {name for names in (migrations or {}).values() for name in names}
        return [*(p for p in [*self.copy_targets, *self.link_targets] if p.name in named),
                self.boot, self.root, self.hash]


@dataclass
class PublishOptions:
    version: Version
    policy: WavePolicy
    start: int
    migrations: dict[MigrationKey, list[str]] | None = None
    init: bool = False
    allow_expired: bool = False
    new_manifest: bool = False
    new_root_files: list[Path] = field(default_factory=list)


def check_files(images: ReleaseImages) -> None:
    for path in images.files():
        found = stat_or_none(path)
        if found is None:
            raise UsageError(f"{path}: no such file")
        if not stat.S_ISREG(found.st_mode):
            raise UsageError(f"{path}: not a file")
        check_safe_name(path.name, "target name (file name)")


class AlreadyPublished(RepoToolError):
    """The version is live with exactly these files: a rerun after success (or after a lost answer)."""

    exit_code = 0


def _already_published(loaded: Loaded, manifest: Manifest, images: ReleaseImages, names: Images,
                       version: Version, digests: dict[Path, FileDigest]) -> bool:
    location = loaded.location
    live = next((u for u in manifest.updates if u.matches(location.variant, location.arch, version)), None)
    if live is None or loaded.repo is None or loaded.new_roots or live.images != names:
        return False
    listed = loaded.repo.targets.signed["targets"]
    for path in images.files():
        entry = listed.get(path.name)
        digest = digests[path]
        if entry is None or entry.get("length") != digest.length or entry["hashes"].get("sha256") != digest.sha256:
            return False
    return True


def prepare_publish(location: Location, images: ReleaseImages, options: PublishOptions, now: int,
                    digests: dict[Path, FileDigest]) -> tuple[Loaded, RepoEditor, Manifest, dict[int, int], list[str]]:
    """Load, add the targets and the update; :class:`AlreadyPublished` if it is live with these very files."""
    loaded = load_live(location, now, init=options.init, allow_expired=options.allow_expired,
                       new_manifest=options.new_manifest, new_root_files=options.new_root_files)
    manifest = loaded.manifest()
    names = Images(boot=images.boot.name, root=images.root.name, hash=images.hash.name)
    if _already_published(loaded, manifest, images, names, options.version, digests):
        raise AlreadyPublished(f"{location.variant}/{location.arch}: {options.version} is already published with "
                               "these files; nothing to do (waves and migrations stay as published: change "
                               "waves with rollout reschedule)")
    editor = RepoEditor(loaded.root, loaded.repo, loaded.new_roots)
    for path in images.files():
        digest = digests[path]
        editor.add_target(NewTarget(path.name, digest.length, digest.sha256, path, digest.mtime_ns))
    warnings = manifest.add_update(options.version, None, location.arch, location.variant, names)
    if options.migrations is not None:
        warnings += manifest.merge_migrations(options.migrations)
    warnings += manifest.set_waves(location.variant, location.arch, options.version, options.start, options.policy)
    missing = [n for n in manifest.target_names() if n not in editor.targets]
    if missing:
        raise UsageError(
            f"manifest.json would name targets the repository does not list: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "") + " (add them with --copy-target)"
        )
    waves = next(u.waves for u in manifest.updates if u.matches(location.variant, location.arch, options.version))
    return loaded, editor, manifest, waves, warnings


def publish(location: Location, images: ReleaseImages, options: PublishOptions, now: int, write: bool,
            jobs: int | None = None, progress: Progress | None = None) -> Outcome:
    check_files(images)
    digests = hash_files(images.files(), jobs, lz4=images.decoded_by_nodes(options.migrations))
    loaded, editor, manifest, waves, warnings = prepare_publish(location, images, options, now, digests)
    outcome = finish(loaded, editor, manifest, options.start, write, waves, progress, now=now)
    outcome.warnings.extend(warnings)
    return outcome


def publish_many(jobs_list: list[tuple[Location, ReleaseImages]], options: PublishOptions, now: int, write: bool,
                 jobs: int | None = None, progress: Progress | None = None) -> list[Outcome]:
    """One version into many variant/arch repos: every file hashed once, every plan built (and
    self-checked) before anything is written, shared targets written once."""
    for _, images in jobs_list:
        check_files(images)
    digests = hash_files([p for _, images in jobs_list for p in images.files()], jobs,
                         lz4=[p for _, images in jobs_list for p in images.decoded_by_nodes(options.migrations)])
    prepared = []
    done: list[str] = []
    for location, images in jobs_list:
        try:
            loaded, editor, manifest, waves, warnings = prepare_publish(location, images, options, now, digests)
        except AlreadyPublished as exc:  # a rerun after a partial failure: finish the others
            done.append(exc.message)
            continue
        try:
            outcome = finish(loaded, editor, manifest, options.start, write, waves, now=now, defer_write=True)
        except (VerificationError, ConfigError, UsageError) as exc:
            raise exc.within(f"{location.variant}/{location.arch}") from None
        outcome.warnings.extend(warnings)
        prepared.append(outcome)
    if not prepared:
        raise AlreadyPublished(f"{options.version} is already published in every repository listed; nothing to do")
    prepared[0].warnings.extend(f"skipped {message}" for message in done)
    if write:
        for outcome in prepared:  # shared targets: a second put of the same object is skipped by storage
            loc = outcome.location
            try:
                outcome.written = write_plan(outcome.plan, loc.meta, loc.targets, progress)
            except RepoToolError as exc:
                landed = [f"{o.location.variant}/{o.location.arch}" for o in prepared if not o.planned_only]
                note = f" (already published: {', '.join(landed)}; run again to finish the rest)" if landed else ""
                raise type(exc)(f"{loc.variant}/{loc.arch}: {exc.message}{note}") from None
            outcome.planned_only = False
    return prepared


# --- maintenance ---------------------------------------------------------------------------


def refresh(location: Location, now: int, write: bool, unsafe: bool = False,
            new_root_files: list[Path] | None = None, progress: Progress | None = None) -> Outcome:
    """Re-sign targets, snapshot and timestamp with new expirations; targets and manifest untouched."""
    loaded = load_live(location, now, allow_expired=unsafe, new_root_files=new_root_files, read_manifest=False)
    editor = RepoEditor(loaded.root, loaded.repo, loaded.new_roots)
    return finish(loaded, editor, None, now, write, progress=progress)


def _manifest_custom(editor: RepoEditor) -> dict[str, Any]:
    entry = editor.targets.get(MANIFEST) or {}
    custom = entry.get("custom")
    return dict(custom) if isinstance(custom, dict) else {}


def _update_key(location: Location, version: Version) -> str:
    return f"{location.variant} {location.arch} {version}"


def _find_update_version(manifest: Manifest, location: Location, version: Version | None) -> Version:
    mine = [u for u in manifest.updates if (u.variant, u.arch) == (location.variant, location.arch)]
    if not mine:
        raise UsageError(f"manifest.json has no update for {location.variant} {location.arch}")
    if version is None:
        return max(u.version for u in mine)
    if not any(u.version == version for u in mine):
        raise UsageError(f"manifest.json has no update {location.variant} {location.arch} {version}")
    return version


def rollout(location: Location, action: str, now: int, write: bool, version: Version | None = None,
            policy: WavePolicy | None = None, start: int | None = None, allow_expired: bool = False,
            progress: Progress | None = None) -> Outcome:
    """``pause``, ``resume``, ``halt`` or ``reschedule`` the waves of one published update."""
    loaded = load_live(location, now, allow_expired=allow_expired)
    editor = RepoEditor(loaded.root, loaded.repo, loaded.new_roots)
    manifest = loaded.manifest()
    version = _find_update_version(manifest, location, version)
    update = next(u for u in manifest.updates if u.matches(location.variant, location.arch, version))
    custom = _manifest_custom(editor)
    paused: dict[str, Any] = dict(custom.get(CUSTOM_KEY, {}).get("paused", {}))
    key = _update_key(location, version)
    warnings: list[str] = []
    if action == "pause":
        if key in paused:
            raise UsageError(f"{key} is already paused (since {paused[key]['paused_at']})")
        if not update.waves:
            raise UsageError(f"{key} has no waves: updog offers it to every host at once, so there is nothing to "
                             f"pause; pull it with {_PULL.format(version=version)}")
        if is_paused(update.waves):
            raise UsageError(f"{key} is halted (its waves start in the year {format_instant(PAUSED_AT)[:4]}): "
                             "there is nothing to pause; start it again with rollout reschedule")
        new_waves, held = paused_waves(update.waves, now)
        if not held:
            raise UsageError(f"{key}: every wave has already started; nothing left to pause (use halt)")
        update.waves = new_waves
        paused[key] = {"paused_at": format_instant(now),
                       "waves": {str(k): format_instant(v) for k, v in sorted(held.items())}}
        warnings.append(_still_offered(key, update.waves, version))
    elif action == "resume":
        record = paused.pop(key, None)
        if record is None:
            raise UsageError(f"{key} is not paused")
        held = {int(k): parse_instant(v) for k, v in record["waves"].items()}
        update.waves = resumed_waves(update.waves, held, parse_instant(record["paused_at"]), now)
    elif action == "halt":
        if not update.waves:
            raise UsageError(f"{key} has no waves: updog offers it to every host at once, so halting its waves "
                             f"cannot hold anyone back; pull it with {_PULL.format(version=version)}")
        update.waves = halted_waves(update.waves)
        paused.pop(key, None)
        warnings.append(_still_offered(key, update.waves, version))
    elif action == "reschedule":
        if policy is None:
            raise UsageError("reschedule needs --wave-policy")
        manifest.set_waves(location.variant, location.arch, version, now if start is None else start, policy)
        paused.pop(key, None)
    else:
        raise UsageError(f"unknown rollout action {action!r}")
    tool = dict(custom.get(CUSTOM_KEY, {}))
    if paused:
        tool["paused"] = paused
    else:
        tool.pop("paused", None)
    if tool:
        custom[CUSTOM_KEY] = tool
    else:
        custom.pop(CUSTOM_KEY, None)
    outcome = finish(loaded, editor, manifest, now, write, update.waves, progress, manifest_custom=custom)
    outcome.warnings.extend(warnings)
    return outcome


_PULL = "set-max-version (below {version}) or remove-update --version {version}"


def _still_offered(key: str, waves: dict[int, int], version: Version) -> str:
    """Who a pause or halt cannot stop: updog offers the initial wave at once (SPEC §7)."""
    last = offered_regardless(waves)
    seeds = "seed 0 (the initial wave) is" if last == 0 else f"seeds 0-{last} (the initial wave) are"
    return (f"{key}: {seeds} still offered the update: updog offers the initial wave at "
            f"once, whatever the wave times; to stop those hosts too, pull it with {_PULL.format(version=version)}")


def edit_manifest(location: Location, now: int, write: bool, edit: Callable[[Manifest], list[str]],
                  allow_expired: bool = False, progress: Progress | None = None,
                  allow_broken_chain: bool = False) -> Outcome:
    """A verified load, a manifest edit (``set-max-version``, ``remove-update``), re-sign, write."""
    loaded = load_live(location, now, allow_expired=allow_expired)
    editor = RepoEditor(loaded.root, loaded.repo, loaded.new_roots)
    manifest = loaded.manifest()
    warnings = edit(manifest)
    outcome = finish(loaded, editor, manifest, now, write, progress=progress, chain_hint=PULL_HINT,
                     allow_broken_chain=allow_broken_chain)
    outcome.warnings.extend(warnings)
    return outcome
