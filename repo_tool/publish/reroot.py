"""Re-root (``mirror --resign``): publish upstream's verified releases into a repository signed by the
operator's own keys, on the operator's own waves and expirations.

Upstream is loaded and verified as a node loads it (tough's rules, from the trusted root the operator
was given, every delegated role); its ``manifest.json`` gives the updates ``--versions`` chooses for
one variant/arch.  Each one the operator's repository lacks is added as ``publish`` adds a release:
its images and the migrations of every walk to it (upstream's steps, so nodes running any version
upstream lists can reach it), with waves from the operator's policy counted from the operator's start.
The targets keep upstream's names and bytes; they are streamed from upstream into the operator's
targets storage, checked against upstream's listing as they pass, while the edit is written
(:func:`~.editor.write_plan`: targets first, ``timestamp.json`` last), so nothing is stored before
every check has passed and no image is held whole in memory.

An update the operator already has is left as it is (its waves, ``max_version`` and any pause are the
operator's); one upstream pulled (above its ``max_version``) is not added; a run with nothing new is
:class:`~.release.AlreadyPublished`.

Must not: write anything of the operator's before upstream has verified, or change an update the
operator's repository already holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repo_tool.core.manifest import MANIFEST_NAME, Manifest, Update
from repo_tool.core.semver import Version
from repo_tool.core.versionspec import VersionSpec, chosen_updates, needed_steps
from repo_tool.core.waves import WavePolicy
from repo_tool.errors import RepoToolError, UsageError, VerificationError, some_failed
from repo_tool.publish.editor import NewTarget, Streamed
from repo_tool.publish.live import ChainPolicy, LiveEdit, Outcome, Output, live_edit
from repo_tool.publish.load import LoadOptions, Location
from repo_tool.publish.release import AlreadyPublished
from repo_tool.storage.base import Storage
from repo_tool.trust.verifier import TOUGH, Repo, TargetError, open_repo, read_manifest, stream_target
from repo_tool.trust.verifier import LoadOptions as ClientLoad

UPSTREAM_CHAIN = ChainPolicy(hint="upstream's manifest.json has no such step; re-root a version upstream's "
                                  "migration chain reaches from the versions already re-rooted")


@dataclass(frozen=True)
class Upstream:
    """The repository re-rooted from: its variant/arch metadata, its targets, and the trusted root it is
    verified from (its bytes, and its name for messages)."""

    metadata: Storage
    targets: Storage
    root: bytes
    root_name: str = "trusted root"


@dataclass
class RerootOptions:
    """Which upstream updates (``versions``), and the operator's waves: ``policy`` counted from ``start``
    (``start_from``: what set it, for messages); how the operator's repository is loaded (``--init``)."""

    versions: VersionSpec
    policy: WavePolicy
    start: int
    start_from: str | None = None
    load: LoadOptions = field(default_factory=LoadOptions)


@dataclass(frozen=True)
class Verified:
    """Upstream, verified: the loaded repository and its manifest."""

    upstream: Upstream
    repo: Repo
    manifest: Manifest


def verify_upstream(upstream: Upstream, now: int) -> Verified:
    """Load and verify ``upstream`` as a node does at ``now``; it must list a ``manifest.json``."""
    repo = open_repo(upstream.metadata, upstream.root, now, TOUGH,
                     ClientLoad(trusted_root_name=upstream.root_name, eager=True))
    manifest = read_manifest(repo, upstream.targets)
    if manifest is None:
        raise VerificationError(f"{upstream.metadata.url}: lists no manifest.json (not a Bottlerocket "
                                "repository?); a re-root publishes upstream's updates")
    return Verified(upstream, repo, manifest)


@dataclass
class Rerooted:
    """What a re-root did: the edit's outcome (as ``publish`` reports it) and the upstream versions it
    added, from where."""

    outcome: Outcome
    added: list[Version]
    upstream_url: str

    def upstream_json(self) -> dict[str, Any]:
        """The ``upstream`` member of the JSON answer (beside the outcome's, as ``publish`` reports it)."""
        return {"metadata_url": self.upstream_url, "added": [str(v) for v in self.added]}


@dataclass
class RerootMany:
    """A re-root of many variant/arch repositories: each one's result, and each one that failed."""

    done: list[tuple[Location, Rerooted | AlreadyPublished]] = field(default_factory=list)
    failures: list[tuple[Location, RepoToolError]] = field(default_factory=list)

    def error(self) -> RepoToolError | None:
        """None if every repository was re-rooted (or had nothing to do); else one error naming each failure."""
        return some_failed([(f"{loc.variant}/{loc.arch}", exc) for loc, exc in self.failures], len(self.done),
                           "done")


def reroot_each(jobs: list[tuple[Location, Upstream]], now: int, output: Output,
                options: RerootOptions) -> RerootMany:
    """:func:`reroot` each (repository, upstream) in turn; one that fails is reported and the others go on."""
    many = RerootMany()
    for location, upstream in jobs:
        try:
            many.done.append((location, reroot(location, upstream, now, output, options)))
        except RepoToolError as exc:
            many.failures.append((location, exc))
    return many


def reroot(location: Location, upstream: Upstream, now: int, output: Output,
           options: RerootOptions) -> Rerooted | AlreadyPublished:
    """Publish the updates of ``upstream`` that ``options.versions`` chooses for the location's
    variant/arch into the operator's repository at ``location`` (see the module docstring)."""
    source = verify_upstream(upstream, now)
    with live_edit(location, now, output, options.load) as edit:
        added = add_upstream(edit, source, options)
        if not added:
            edit.cancel()
            chosen = _versions(source, location, options)
            what = (f"every chosen upstream update ({', '.join(map(str, chosen))}) is already re-rooted" if chosen
                    else "upstream pulled every update chosen")
            return AlreadyPublished(f"{location.variant}/{location.arch}: {what}; nothing to do (waves stay as "
                                    "published: change them with rollout reschedule)", tuple(edit.warnings))
    return Rerooted(edit.outcome, added, upstream.metadata.url)


def _versions(source: Verified, location: Location, options: RerootOptions) -> list[Version]:
    return [u.version for u in _chosen(source, location, options)[0]]


def _chosen(source: Verified, location: Location, options: RerootOptions) -> tuple[list[Update], list[str]]:
    """Upstream's updates for the variant/arch that ``options.versions`` chooses, ascending, without
    those upstream pulled (above its ``max_version``); and a warning for each pulled one."""
    variant, arch = location.variant, location.arch
    mine = [u for u in source.manifest.updates if (u.variant, u.arch) == (variant, arch)]
    if not mine:
        pairs = sorted({f"{u.variant}/{u.arch}" for u in source.manifest.updates})
        raise UsageError(f"--variant {variant} --arch {arch}: upstream's manifest.json "
                         f"({source.upstream.metadata.url}) has no update for it (it has {', '.join(pairs) or 'none'})")
    chosen = [u for u in chosen_updates(source.manifest, options.versions) if (u.variant, u.arch) == (variant, arch)]
    if not chosen:
        listed = ", ".join(sorted({str(u.version) for u in mine}))
        raise UsageError(f"--versions {options.versions.text}: no {variant}/{arch} update of upstream's "
                         f"manifest.json matches (it lists {listed})")
    kept = [u for u in chosen if u.version <= u.max_version]
    warnings = [f"upstream pulled {u.version} (its max_version is {u.max_version}); not re-rooted"
                for u in chosen if u.version > u.max_version]
    return sorted(kept, key=lambda u: u.version), warnings


def _pull_warnings(source: Verified, manifest: Manifest, variant: str, arch: str) -> list[str]:
    """A warning for each release this repository serves that upstream has pulled since (above
    upstream's ``max_version``): upstream's pull is not the operator's until the operator makes it."""
    upstream = {u.version: u.max_version for u in source.manifest.updates if (u.variant, u.arch) == (variant, arch)}
    return [f"upstream pulled {u.version} (its max_version is {upstream[u.version]}), which this repository "
            f"serves; pull it here too with set-max-version or remove-update --version {u.version}"
            for u in manifest.updates if (u.variant, u.arch) == (variant, arch) and u.version in upstream
            and u.version > upstream[u.version] and u.version <= u.max_version]


def _check_pulls_kept(manifest: Manifest, variant: str, arch: str, new: list[Update]) -> None:
    """Refuse to add a release above a pull the operator made: raising ``max_version`` to the new
    release would offer the pulled one again (updog takes the newest ready update up to it)."""
    pulled = [u for u in manifest.updates if (u.variant, u.arch) == (variant, arch) and u.version > u.max_version]
    newest = max(u.version for u in new)
    for update in sorted(pulled, key=lambda u: u.version):
        if update.version < newest:
            raise UsageError(f"{variant}/{arch}: {update.version} is pulled here (max_version {update.max_version}); "
                             f"adding {newest} would raise max_version to {newest} and offer {update.version} again: "
                             f"remove it first (remove-update --version {update.version}), or choose --versions "
                             f"at or below {update.max_version}")


def add_upstream(edit: LiveEdit, source: Verified, options: RerootOptions) -> list[Version]:
    """Add to ``edit`` the chosen upstream updates it lacks (targets, migrations, waves); their versions
    (none: nothing to do)."""
    location = edit.location
    chosen, warnings = _chosen(source, location, options)
    manifest = edit.manifest()
    warnings += _pull_warnings(source, manifest, location.variant, location.arch)
    edit.warnings += warnings
    new: list[Update] = []
    for update in chosen:
        held = next((u for u in manifest.updates if u.matches(location.variant, location.arch, update.version)), None)
        if held is None:
            new.append(update)
        elif held.images != update.images:
            raise VerificationError(f"{location.variant}/{location.arch} {update.version}: the repository already "
                                    f"holds it with other images than upstream's ({held.images.root}, upstream "
                                    f"{update.images.root}); is this repository re-rooted from another upstream?")
    if not new:
        return []
    _check_pulls_kept(manifest, location.variant, location.arch, new)
    warnings = []
    steps = needed_steps(source.manifest, new)
    names = [n for u in new for n in (u.images.boot, u.images.root, u.images.hash)]
    names += [n for step in steps.values() for n in step]
    for name in dict.fromkeys(names):
        if name != MANIFEST_NAME:
            edit.editor.add_target(_streamed(source, name))
    edit.start = edit.waves_start = options.start
    edit.start_from = options.start_from
    edit.chain = UPSTREAM_CHAIN
    for update in new:  # max_version rises to the newest release, as publish raises it (updata's rule)
        warnings += manifest.add_update(update.version, None, location.arch, location.variant, update.images)
        warnings += manifest.set_waves(location.variant, location.arch, update.version, options.start, options.policy)
    warnings += manifest.merge_migrations(steps, "upstream's manifest.json")
    missing = [n for n in manifest.target_names() if n not in edit.editor.targets]
    if missing:
        raise VerificationError(f"{location.meta.url}: manifest.json would name targets the repository does not "
                                f"list: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    newest = new[-1]
    edit.waves = next(u.waves for u in manifest.updates if u.matches(location.variant, location.arch, newest.version))
    edit.warnings += warnings
    return [u.version for u in new]


def _streamed(source: Verified, name: str) -> NewTarget:
    """Upstream's target ``name`` as a new target of the operator's, its bytes streamed (and checked
    against upstream's listing) when the edit is written."""
    repo, store = source.repo, source.upstream.targets
    target = repo.find(name)
    if target is None:
        raise TargetError(f"upstream's manifest.json names {name!r}, which {repo.what('targets')} does not list")
    where = store.describe(repo.object_name(target))
    return NewTarget(name, target.length, target.sha256, Streamed(lambda: stream_target(repo, store, target), where))
