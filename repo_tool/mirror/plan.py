"""What a mirror run copies: the source loaded and verified as a node does, and every object it needs
compared with the destination (present with the same size or bytes: skipped).

Must not: write anything.  Every refusal (a source that fails verification, a destination that holds
other bytes under a name, or a newer timestamp) is raised from here, before the first write.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from repo_tool.core.versionspec import VersionSpec, chosen_updates, needed_targets, offered_now
from repo_tool.errors import UsageError, VerificationError
from repo_tool.storage.base import ConflictError, Storage, already_sized
from repo_tool.trust.model import MetadataError, RoleFile
from repo_tool.trust.verifier import (
    TIMESTAMP,
    TOUGH,
    LoadOptions,
    Repo,
    Target,
    TargetError,
    open_repo,
    read_manifest,
    role_file_name,
    verify_next_root,
    verify_trusted_root,
)

ROOT, METADATA, TARGETS = "root", "metadata", "targets"
CATEGORIES = (ROOT, METADATA, TARGETS)


@dataclass(frozen=True)
class Location:
    """One repository's two places: its variant/arch metadata and its (shared) targets."""

    metadata: Storage
    targets: Storage


@dataclass(frozen=True)
class Item:
    """One object of the mirror: its category, name, size; the bytes of a metadata file (a target,
    ``target`` set, is streamed); whether the destination already holds it."""

    category: str
    name: str
    size: int
    present: bool
    raw: bytes | None = None
    target: Target | None = None


@dataclass
class Plan:
    """The verified source and the objects in the order they are written (targets, roots, versioned
    metadata, ``timestamp.json`` last), with the destination's current ``timestamp.json``."""

    repo: Repo
    versions: list[str]
    items: list[Item] = field(default_factory=list)
    destination_timestamp: bytes | None = None
    previous_version: int | None = None


def make_plan(source: Location, destination: Location, trusted_root: tuple[bytes, str], now: int,
              versions: VersionSpec | None) -> Plan:
    """Load and verify ``source`` from ``trusted_root`` (its bytes, and its name for messages) at ``now``
    (tough's rules, every delegated role), choose its targets (``versions`` None: every listed one) and
    compare each object with ``destination``."""
    raw, name = trusted_root
    repo = open_repo(source.metadata, raw, now, TOUGH, LoadOptions(trusted_root_name=name, eager=True))
    if not repo.consistent:
        raise VerificationError(f"{source.metadata.url}: the root does not use consistent snapshots; a mirror "
                                "copies versioned file names only (as Bottlerocket's repositories use)")
    targets, chosen = _targets(repo, source, versions)
    plan = Plan(repo, chosen)
    _check_timestamp(plan, destination.metadata)
    for target in targets:
        name = repo.object_name(target)
        existing = destination.targets.size(name)
        if existing is not None:
            already_sized(destination.targets, name, existing, target.length)
        plan.items.append(Item(TARGETS, name, target.length, existing is not None, target=target))
    meta = destination.metadata
    settled = plan.destination_timestamp == repo.timestamp.raw
    for name, raw in _root_files(repo, source.metadata):
        plan.items.append(_metadata_item(meta, ROOT, name, raw, settled))
    role_files = [(role_file_name(role, f.version, True), f.raw) for role, f in repo.delegated.items()]
    role_files += [(name, f.raw) for f, name in reversed(repo.role_files()) if f.role != "timestamp"]
    for name, raw in role_files:
        plan.items.append(_metadata_item(meta, METADATA, name, raw, settled))
    plan.items.append(Item(METADATA, TIMESTAMP, len(repo.timestamp.raw), settled, repo.timestamp.raw))
    return plan


def _targets(repo: Repo, source: Location, versions: VersionSpec | None) -> tuple[list[Target], list[str]]:
    """The targets to copy and the versions of the manifest they carry."""
    manifest = read_manifest(repo, source.targets)
    if versions is None:
        names = [name for role in [repo.targets, *repo.delegated.values()] for name in _listed(repo, role)]
        updates = manifest.updates if manifest is not None else []
    else:
        if manifest is None:
            raise VerificationError(f"--versions {versions.text}: {source.metadata.url} lists no manifest.json "
                                    "(not a Bottlerocket repository?); mirror without --versions")
        updates = chosen_updates(manifest, versions)
        if not updates:
            listed = ", ".join(sorted({str(u.version) for u in manifest.updates})) or "none"
            raise UsageError(f"--versions {versions.text}: no update of the source's manifest.json matches "
                             f"(it lists {listed})")
        left_out = [u for u in offered_now(manifest) if u not in updates]
        if left_out:
            update = left_out[0]
            group = f"{update.variant}/{update.arch}"
            raise UsageError(f"--versions {versions.text}: leaves out {update.version} ({group}), "
                             "the release the source's manifest.json offers nodes now; the mirror's copy of that "
                             "manifest would send them to images it does not hold (add it: --versions "
                             f"{versions.text},{update.version})")
        names = needed_targets(manifest, updates)
    found: dict[str, Target] = {}
    for name in dict.fromkeys(names):
        target = repo.find(name)
        if target is None:
            raise TargetError(f"manifest.json names {name!r}, which {repo.what('targets')} does not list")
        found.setdefault(repo.object_name(target), target)
    chosen = sorted({str(u.version) for u in updates}, key=lambda v: tuple(v.split(".")))
    return list(found.values()), chosen


def _listed(repo: Repo, role: RoleFile) -> list[str]:
    return list(repo.policy.listed_targets(role))


def _root_files(repo: Repo, meta: Storage) -> list[tuple[str, bytes]]:
    """Every ``N.root.json`` from 1 to the newest as stored; those below the trusted root are checked as
    a chain from ``1.root.json`` (each signed by its predecessor) that reaches the trusted root."""
    first = repo.roots[0]
    files: list[tuple[str, bytes]] = []
    current: RoleFile | None = None
    for version in range(1, first.version + 1):
        name = f"{version}.root.json"
        raw = meta.read(name, repo.limits.root)
        if raw is None:
            raise MetadataError(f"{meta.describe(name)}: not found (a mirror copies the whole root chain)")
        what = meta.describe(name)
        current = verify_trusted_root(raw, what) if current is None else verify_next_root(current, raw, what)
        files.append((name, raw))
    assert current is not None
    if current.signed != first.signed:
        raise VerificationError(f"{meta.describe(f'{first.version}.root.json')}: is not the trusted root "
                                f"(version {first.version} differs)")
    files += [(f"{root.version}.root.json", root.raw) for root in repo.roots[1:]]
    return files


def _metadata_item(meta: Storage, category: str, name: str, raw: bytes, settled: bool) -> Item:
    """A versioned metadata file: present if the destination holds these very bytes; other bytes refuse.
    ``settled`` (the destination's timestamp is the source's, and it is written last): a file of the
    right size is taken as present on its size alone (one HEAD, no GET, on a rerun with nothing new)."""
    size = meta.size(name)
    if size is None:
        return Item(category, name, len(raw), False, raw)
    if size != len(raw) or (not settled and meta.read(name) != raw):
        raise ConflictError(f"{meta.describe(name)}: holds other bytes than the source's {name} (another "
                            "repository, or a different upstream?); refusing to mirror into it")
    return Item(category, name, len(raw), True, raw)


def _check_timestamp(plan: Plan, meta: Storage) -> None:
    """The destination's ``timestamp.json``: none, older, or the very same; a newer one is refused
    (the source was rolled back, or it is not the destination's upstream)."""
    held = meta.read(TIMESTAMP, plan.repo.limits.timestamp)
    plan.destination_timestamp = held
    if held is None:
        return
    source = plan.repo.timestamp
    try:
        version = TOUGH.parse(held, "timestamp", meta.describe(TIMESTAMP)).version
    except VerificationError as exc:
        raise VerificationError(f"{meta.describe(TIMESTAMP)}: not a timestamp the mirror can replace: "
                                f"{exc.message}") from None
    plan.previous_version = version
    if version > source.version:
        raise VerificationError(f"{meta.describe(TIMESTAMP)}: version {version} is newer than the source's "
                                f"version {source.version} (the source was rolled back?); refusing to mirror")
    if version == source.version and held != source.raw:
        raise ConflictError(f"{meta.describe(TIMESTAMP)}: version {version} holds other bytes than the source's "
                            "(another repository?); refusing to mirror")
