"""Publishing a release: its images and extra targets, its update and waves in ``manifest.json``,
into one variant/arch repository (``publish``) or many at once (``publish-release``).

A rerun of a publish that already landed (or whose answer was lost) finds the version live with
the very same files and returns :class:`AlreadyPublished`, a result and not an error: there is
nothing to do.

Must not: write before every repository's edit has been checked (:mod:`.live` does the checks and
the ordered write), or hash a file twice: :func:`~repo_tool.hashing.hash_files` hashes each file once
for all repositories, checking the LZ4 frames of those nodes decode.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from repo_tool.core.manifest import Images, MigrationKey
from repo_tool.core.progress import NO_PROGRESS
from repo_tool.core.semver import Version
from repo_tool.core.waves import WavePolicy
from repo_tool.errors import ConfigError, RepoToolError, UsageError, VerificationError
from repo_tool.hashing import FileDigest, hash_files
from repo_tool.localfs import stat_or_none
from repo_tool.publish.editor import NewTarget
from repo_tool.publish.live import LiveEdit, Outcome, Output, live_edit
from repo_tool.publish.load import LoadOptions, Location
from repo_tool.storage.base import Linkable, StorageError
from repo_tool.trust.metadata import check_safe_name


@dataclass
class ReleaseImages:
    variant: str
    arch: str
    boot: Path
    root: Path
    hash: Path
    link_targets: list[Path] = field(default_factory=list)
    copy_targets: list[Path] = field(default_factory=list)
    source: str | None = None  # where they were given: None, the command line's flags; else "FILE: repos[0]"

    def named(self, path: Path) -> str:
        """``path`` with where it was given, for messages: ``--boot-image PATH`` (the command line), or
        ``FILE: repos[0].boot_image: PATH`` (a release file)."""
        fields = (("boot_image", "--boot-image", [self.boot]), ("root_image", "--root-image", [self.root]),
                  ("hash_image", "--hash-image", [self.hash]), ("link_targets", "--link-target", self.link_targets),
                  ("copy_targets", "--copy-target", self.copy_targets))
        for key, flag, paths in fields:
            if path in paths:
                if self.source is None:
                    return f"{flag} {path}"
                index = f"[{paths.index(path)}]" if key.endswith("targets") else ""
                return f"{self.source}.{key}{index}: {path}"
        return str(path)

    def copy_hint(self) -> str:
        return "use --copy-target" if self.source is None else "list it in copy_targets"

    def files(self) -> list[Path]:
        return [*self.copy_targets, *self.link_targets, self.boot, self.root, self.hash]

    def decoded_by_nodes(self, migrations: dict[MigrationKey, list[str]] | None) -> list[Path]:
        """The files nodes decode as LZ4 frames: the three images, and the extra targets that
        Release.toml names as migrations (SPEC §8.4)."""
        named = {name for names in (migrations or {}).values() for name in names}
        return [*(p for p in [*self.copy_targets, *self.link_targets] if p.name in named),
                self.boot, self.root, self.hash]

    def names(self) -> Images:
        return Images(boot=self.boot.name, root=self.root.name, hash=self.hash.name)


@dataclass
class PublishOptions:
    """The release (version, waves from ``policy`` counted from ``start``, Release.toml's migration
    steps), how to load each repository, and how many files are hashed at once."""

    version: Version
    policy: WavePolicy
    start: int
    migrations: dict[MigrationKey, list[str]] | None = None
    load: LoadOptions = field(default_factory=LoadOptions)
    jobs: int | None = None
    start_from: str | None = None  # what set ``start`` (``--release-start-time T``), for messages


@dataclass(frozen=True)
class AlreadyPublished:
    """Nothing to do: the version is live with exactly these files (a rerun after success, or
    after a lost answer).  ``message`` says so; ``warnings``, what the run noticed all the same."""

    message: str
    warnings: tuple[str, ...] = ()


def check_files(images: ReleaseImages) -> None:
    for path in images.files():
        found = stat_or_none(path)
        if found is None:
            raise UsageError(f"{images.named(path)}: no such file")
        if not stat.S_ISREG(found.st_mode):
            raise UsageError(f"{images.named(path)}: not a file")
        check_safe_name(path.name, f"{images.named(path)}: target name (file name)")


def check_links(location: Location, images: ReleaseImages) -> list[str]:
    """``--link-target`` needs a targets storage that can link to the file (a local directory on
    its file system): else a usage error saying to copy.  Warnings for linked files others cannot
    read (the repository's object is the same file, with its owner and mode)."""
    store = location.targets
    warnings = []
    for path in images.link_targets:
        problem = store.link_problem(path) if isinstance(store, Linkable) else \
            f"{store.url} cannot hold links (only a local directory can)"
        if problem is not None:
            raise UsageError(f"{images.named(path)}: {problem}; {images.copy_hint()} to store a copy")
        mode = stat.S_IMODE(path.stat().st_mode)
        if not mode & stat.S_IROTH:
            warnings.append(f"{images.named(path)}: others cannot read it (mode {mode:04o}), and the repository's "
                            "object is the same file")
    return warnings


def _is_live(edit: LiveEdit, images: ReleaseImages, version: Version, digests: dict[Path, FileDigest]) -> bool:
    """The version is live with exactly these files."""
    location, loaded = edit.location, edit.loaded
    manifest = edit.manifest()
    live = next((u for u in manifest.updates if u.matches(location.variant, location.arch, version)), None)
    if live is None or loaded.repo is None or loaded.new_roots or live.images != images.names():
        return False
    listed = loaded.repo.targets.signed["targets"]
    for path in images.files():
        entry = listed.get(path.name)
        digest = digests[path]
        if entry is None or entry.get("length") != digest.length or entry["hashes"].get("sha256") != digest.sha256:
            return False
    return True


def add_release(edit: LiveEdit, images: ReleaseImages, options: PublishOptions,
                digests: dict[Path, FileDigest]) -> AlreadyPublished | None:
    """Add the release's targets and its update (with waves) to ``edit``; or, if it is live with
    these very files, add nothing and return :class:`AlreadyPublished`."""
    location = edit.location
    if _is_live(edit, images, options.version, digests):
        return AlreadyPublished(f"{location.variant}/{location.arch}: {options.version} is already published with "
                                "these files; nothing to do (waves and migrations stay as published: change "
                                "waves with rollout reschedule)")
    edit.start = edit.waves_start = options.start
    edit.start_from = options.start_from
    for path in images.files():
        digest = digests[path]
        edit.editor.add_target(NewTarget(path.name, digest.length, digest.sha256, path, digest.mtime_ns,
                                         link=path in images.link_targets))
    manifest = edit.manifest()
    version = options.version
    warnings = manifest.add_update(version, None, location.arch, location.variant, images.names())
    if options.migrations is not None:
        warnings += manifest.merge_migrations(options.migrations)
    warnings += manifest.set_waves(location.variant, location.arch, version, options.start, options.policy)
    missing = [n for n in manifest.target_names() if n not in edit.editor.targets]
    if missing:
        raise UsageError(
            f"manifest.json would name targets the repository does not list: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "") + " (add them with --copy-target)"
        )
    edit.waves = next(u.waves for u in manifest.updates if u.matches(location.variant, location.arch, version))
    edit.warnings += [*check_links(location, images), *warnings]
    return None


def _hash(jobs_list: list[tuple[Location, ReleaseImages]], options: PublishOptions,
          output: Output) -> dict[Path, FileDigest]:
    """Every file checked (and each link possible) and hashed once (the LZ4 frames of those nodes
    decode checked too), the bytes reported to the output's progress."""
    images = [one for _, one in jobs_list]
    for location, one in jobs_list:
        check_files(one)
        check_links(location, one)
    return hash_files([p for one in images for p in one.files()], options.jobs,
                      lz4=[p for one in images for p in one.decoded_by_nodes(options.migrations)],
                      progress=output.progress or NO_PROGRESS)


def publish(location: Location, now: int, output: Output, images: ReleaseImages,
            options: PublishOptions) -> Outcome | AlreadyPublished:
    """Publish one release into one variant/arch repository."""
    digests = _hash([(location, images)], options, output)
    with live_edit(location, now, output, options.load) as edit:
        already = add_release(edit, images, options, digests)
        if already is not None:
            edit.cancel()
            return already
    return edit.outcome


def publish_many(jobs_list: list[tuple[Location, ReleaseImages]], now: int, output: Output,
                 options: PublishOptions) -> list[Outcome] | AlreadyPublished:
    """One version into many variant/arch repos: every file hashed once, every plan built (and
    self-checked) before anything is written, shared targets written once."""
    digests = _hash(jobs_list, options, output)
    prepared = []
    done: list[str] = []
    for location, images in jobs_list:
        edit = LiveEdit.open(location, now, options.load)
        already = add_release(edit, images, options, digests)
        if already is not None:  # a rerun after a partial failure: finish the others
            done.append(already.message)
            continue
        try:
            prepared.append(edit.build(output))
        except (VerificationError, ConfigError, UsageError, StorageError) as exc:
            raise exc.within(f"{location.variant}/{location.arch}") from None
    if not prepared:
        return AlreadyPublished(f"{options.version} is already published in every repository listed; nothing to do")
    prepared[0].warnings.extend(f"skipped {message}" for message in done)
    for outcome in prepared:  # shared targets: a second put of the same object is skipped by storage
        loc = outcome.location
        try:
            output.deliver(outcome)
        except RepoToolError as exc:
            landed = [f"{o.location.variant}/{o.location.arch}" for o in prepared if not o.planned_only]
            note = f" (already published: {', '.join(landed)}; run again to finish the rest)" if landed else ""
            raise exc.reworded(f"{loc.variant}/{loc.arch}: {exc.message}{note}") from None
    return prepared
