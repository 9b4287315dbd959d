"""Where a variant/arch repository lives, and the verified load of it that every edit starts from.

:func:`load_live` reads the live repository as a client would (root chain, timestamp, snapshot,
targets, and ``manifest.json``), or, for ``--init``, checks that there is none yet (none, or a whole
one to continue, for ``publish-release --init``); it also takes
new roots given with ``--root-role`` and resumes a root rotation a killed run left half done.

Must not: write anything, sign anything, or edit what it loaded (that is :mod:`.live`'s edit).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from repo_tool.config import RepoConfig
from repo_tool.core.manifest import EMPTY_MANIFEST_BYTES, MANIFEST_NAME, Manifest
from repo_tool.errors import ManifestError, UsageError, VerificationError
from repo_tool.storage import open_storage
from repo_tool.storage.base import Storage
from repo_tool.trust.metadata import check_safe_name
from repo_tool.trust.model import SIZE_LIMITS, RoleFile, parse_role
from repo_tool.trust.verifier import (
    TIMESTAMP,
    TOUGH_STRICT_WALK,
    ExpiredError,
    Repo,
    RepoMissingError,
    RootFiles,
    WalkBounds,
    open_repo,
    read_target,
    verify_next_root,
    verify_trusted_root,
    walk_roots,
)
from repo_tool.trust.verifier import LoadOptions as ClientLoad


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


@dataclass(frozen=True)
class LoadOptions:
    """How to load: ``init`` a new repository (with ``or_continue``, continue it instead if it
    exists: ``publish-release --init``), load one whose metadata expired, start a missing
    ``manifest.json``, publish new roots along, or leave ``manifest.json`` unread (an edit that
    does not touch it)."""

    init: bool = False
    or_continue: bool = False
    allow_expired: bool = False
    new_manifest: bool = False
    new_root_files: tuple[Path, ...] = ()
    read_manifest: bool = True


DEFAULT_LOAD = LoadOptions()
"""A verified load of an existing repository that has not expired, ``manifest.json`` included."""


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


def load_live(location: Location, now: int, options: LoadOptions = DEFAULT_LOAD) -> Loaded:
    """Verified load of the live repository (or the checks for ``init``), plus any new roots."""
    config = location.config
    trusted_raw = config.read_root()
    given_roots = _read_roots(options.new_root_files)
    if options.init and not (options.or_continue and location.meta.size(TIMESTAMP) is not None):
        loaded = _load_for_init(location, trusted_raw)
    else:
        loaded = _load_verified(location, trusted_raw, now, options, given_roots)
    given = _given_roots(loaded.root, given_roots)
    if given:
        loaded.root = given[-1]
        loaded.new_roots.extend(given)
    return loaded


def _given_roots(root: RoleFile, given_roots: list[tuple[Path, bytes]]) -> list[RoleFile]:
    """The ``--root-role`` files, in the order given, walked from ``root`` as the next roots (the one
    root-chain walk, its ``read`` handing back the given files in turn; messages name each file)."""
    pending = iter(given_roots)
    current: list[Path] = []

    def read(name: str) -> bytes | None:
        path, raw = next(pending, (None, None))
        if path is None:
            return None
        current[:] = [path]
        return raw

    files = RootFiles(read, describe=lambda name: str(current[0]))
    return walk_roots(root, files, TOUGH_STRICT_WALK, WalkBounds(sys.maxsize)).roots[1:]


def _load_for_init(location: Location, trusted_raw: bytes) -> Loaded:
    """No repository yet: the trusted root is its first root."""
    config, meta = location.config, location.meta
    if meta.size(TIMESTAMP) is not None:
        raise UsageError(f"--init: {meta.describe(TIMESTAMP)} exists; this repository is already initialised")
    root = verify_trusted_root(trusted_raw, str(config.root))
    for version in range(1, root.version + 1):
        stored = meta.read(f"{version}.root.json", SIZE_LIMITS["root"])
        if stored is not None and (version != root.version or stored != root.raw):
            # Same bytes: the leftover of an init that failed later on; it is reused.
            raise UsageError(f"--init: {meta.describe(f'{version}.root.json')} exists but {TIMESTAMP} does not: "
                             "the repository is half there (a failed init with another root?); remove what is there, "
                             "or publish with the root it has")
    warnings = []
    if root.version != 1:
        warnings.append(f"the trusted root is version {root.version}; versions 1..{root.version - 1} "
                        "cannot be published by init, so clients must start from this root")
    return Loaded(location, None, root, [root], EMPTY_MANIFEST_BYTES, warnings)


def _load_verified(location: Location, trusted_raw: bytes, now: int, options: LoadOptions,
                   given_roots: list[tuple[Path, bytes]]) -> Loaded:
    """The live repository, as a client would load it."""
    config = location.config
    warnings = []
    try:
        repo = open_repo(location.meta, trusted_raw, now, TOUGH_STRICT_WALK,
                         ClientLoad(safe=not options.allow_expired, trusted_root_name=str(config.root)))
    except RepoMissingError as exc:
        raise exc.reworded(f"{exc.message}; pass --init to start a new repository") from None
    except ExpiredError as exc:
        raise exc.reworded(f"{exc.message} (refresh the repository, or pass --allow-expired to load it anyway)"
                           ) from None
    except VerificationError:
        resumed = _resume_rotation(location, trusted_raw, now, options.allow_expired, given_roots)
        if resumed is None:
            raise
        repo = resumed
        warnings.append("resuming a root rotation whose new root was published without its metadata")
    new_roots = _unpublished_roots(location.meta, repo.roots)
    if repo.expired:
        warnings.append(f"loaded although expired: {', '.join(repo.expired)} (--allow-expired)")
    data = read_target(repo, location.targets, MANIFEST_NAME) if options.read_manifest else EMPTY_MANIFEST_BYTES
    if data is None:
        if not options.new_manifest:
            raise VerificationError(
                f"{location.meta.url}: the repository lists no manifest.json target; "
                "pass --new-manifest to start one"
            )
        data = EMPTY_MANIFEST_BYTES
    return Loaded(location, repo, repo.root, new_roots, data, warnings)


def _read_roots(paths: tuple[Path, ...]) -> list[tuple[Path, bytes]]:
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
    return open_repo(location.meta, trusted_raw, now, TOUGH_STRICT_WALK,
                     ClientLoad(safe=not allow_expired, trusted_root_name=str(location.config.root),
                                max_root_version=min(versions) - 1))


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
