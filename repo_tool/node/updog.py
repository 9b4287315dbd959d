"""The node client: updog's decisions and staging, on a real GPT disk (SPEC §8, §9).

A command runs in updog's order: read ``updog.toml`` and ``os-release``, load
and verify the variant's TUF repository (with ``seed`` and ``version`` on
every request), read ``manifest.json``, choose (SPEC §8.2), then for an update:
add ``target``, cache the migrations and the manifest as ``<sha256>.<name>``,
add ``migrations``, and stage.  ``update-apply``, ``update-revert``, ``status``
and the other disk commands touch only the GPT and need no network.

Staging keeps the disk safe at every step: the inactive set is cleared (and
the GPT written) before any image byte lands, each image is verified while it
streams, and only then is the set marked valid and, for ``update``, made the
next boot exactly as signpost does.  A failure anywhere leaves the inactive
set unbootable and the active set untouched.
"""

from __future__ import annotations

import os
import platform
import signal
import stat
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repo_tool.core import gptprio
from repo_tool.core.gptprio import SetName, Sets
from repo_tool.core.manifest import MANIFEST_NAME, Manifest, Update, dumps_pretty
from repo_tool.core.nodeconfig import OsRelease, UpdogConfig, bottlerocket_arch, parse_os_release, parse_updog_toml
from repo_tool.core.progress import NO_PROGRESS, Progress, counted
from repo_tool.core.selection import LATEST, Host, Overrides, Selection, retrieve_list, select
from repo_tool.core.semver import Version
from repo_tool.errors import ConfigError, ManifestError, RepoToolError, VerificationError
from repo_tool.localfs import write_atomic
from repo_tool.node.gpt import Disk, GptError, Status, find_os_disk, status
from repo_tool.node.staging import checked, write_image
from repo_tool.storage.directory import DirectoryStore
from repo_tool.storage.http import RemoteDir
from repo_tool.storage.transport import Transport
from repo_tool.trust.verifier import TOUGH, LoadOptions, Repo, Target, TargetError, open_repo, read_target, stored_copy

FETCHED = ".fetched"  # inside the metadata cache: downloads kept for reuse by hash
IMAGE_ORDER = ("root", "boot", "hash")  # updog writes root first, then boot, then hash
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "off")


class NodeError(VerificationError):
    """A node command that cannot go on (exit 1, as updog)."""


@dataclass(frozen=True)
class NodePaths:
    """Every path a node uses; defaults are Bottlerocket's, all overridable (SPEC §9.1)."""

    config: Path = Path("/etc/updog.toml")
    trusted_root: Path = Path("/usr/share/updog/root.json")
    os_release: Path = Path("/usr/lib/os-release")
    disk: Path | None = None  # None: the disk holding the running root filesystem
    active_set: SetName | None = None  # None: discovered (real host) or A (a disk image)
    metadata_cache: Path = Path("/var/cache/bottlerocket-metadata")
    migrations_dir: Path = Path("/var/lib/bottlerocket-migrations")
    state_dir: Path | None = None  # opt-in: trusted metadata kept across runs (rollback protection)
    reboot_command: tuple[str, ...] = ("shutdown", "-r")
    arch: str | None = None  # None: this machine's


@dataclass(frozen=True)
class Flags:
    """updog's command-line flags (SPEC §9.2)."""

    all: bool = False
    image: Version | None = None
    ignore_waves: bool = False
    reboot: bool = False
    json: bool = False
    variant: str | None = None
    log_level: str = "info"


@dataclass
class Output:
    """What a command printed (stdout carries only results).  ``err_sink`` shows stderr lines as
    they happen, so ``Starting update`` appears before a long download and survives a failure;
    ``progress`` is told of the image bytes streamed into the partitions."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    code: int = 0
    err_sink: Callable[[str], None] | None = None
    progress: Progress = NO_PROGRESS

    def out(self, text: str) -> None:
        self.stdout.append(text)

    def err(self, text: str) -> None:
        self.stderr.append(text)
        if self.err_sink is not None:
            self.err_sink(text)


# --- inputs --------------------------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


def read_inputs(paths: NodePaths) -> tuple[UpdogConfig, OsRelease]:
    try:
        config = parse_updog_toml(_read(paths.config, "the updog config").decode("utf-8", "replace"))
    except RepoToolError as exc:
        raise exc.within(str(paths.config)) from None
    try:
        release = parse_os_release(_read(paths.os_release, "os-release").decode("utf-8", "replace"))
    except RepoToolError as exc:
        raise exc.within(str(paths.os_release)) from None
    return config, release


def host_arch(paths: NodePaths) -> str:
    return bottlerocket_arch(paths.arch or platform.machine())


# --- the repository side -------------------------------------------------------------


@dataclass
class Session:
    """One command's view of the update repository."""

    paths: NodePaths
    config: UpdogConfig
    release: OsRelease
    transport: Transport
    repo: Repo
    targets: RemoteDir
    manifest: Manifest
    manifest_raw: bytes
    now: int

    @property
    def variant(self) -> str:
        return self.release.variant_id


def open_session(paths: NodePaths, flags: Flags, now: int) -> Session:
    """Config, proxy, os-release, the verified TUF load and the manifest, in updog's order."""
    config, release = read_inputs(paths)
    os.environ.update(config.proxy_environment())
    if flags.variant is not None:
        release = OsRelease(release.version_id, flags.variant, release.pretty_name, release.build_id)
    transport = Transport(query={"seed": str(config.seed), "version": str(release.version_id)})
    trusted = _read(paths.trusted_root, "the trusted root")
    meta = RemoteDir(config.metadata_base_url, transport)
    targets = RemoteDir(config.targets_base_url, transport)
    # Downloads are kept (best effort) beside updog's cache and reused only when a freshly verified
    # parent lists their sha256; updog's cache itself is written only by an update (the migrator
    # reads it after the reboot, so a check must not move it to newer metadata).
    fetched = DirectoryStore(paths.metadata_cache / FETCHED, best_effort=True)
    state = DirectoryStore(paths.state_dir) if paths.state_dir is not None else None
    repo = open_repo(meta, trusted, now, TOUGH,
                     LoadOptions(trusted_root_name=str(paths.trusted_root), cache=fetched, state=state))
    target = repo.require(MANIFEST_NAME)
    repo.check_fresh()
    raw = _cached_target(paths.migrations_dir, target) or _cached_target(fetched.path, target)
    if raw is None:
        raw = read_target(repo, targets, MANIFEST_NAME)
        assert raw is not None  # listed: require() found it
        fetched.put(f"{target.sha256}.{MANIFEST_NAME}", raw)
    try:
        manifest = Manifest.from_bytes(raw)
    except ManifestError as exc:
        raise NodeError(f"{MANIFEST_NAME} (target of {meta.url}): {exc.message}") from None
    return Session(paths, config, release, transport, repo, targets, manifest, raw, now)


def _cached_target(directory: Path, target: Target) -> bytes | None:
    """A target already saved as ``<sha256>.<name>`` whose bytes match the listing."""
    return stored_copy(directory / f"{target.sha256}.{target.name}", target, TOUGH)


def _save_target(directory: Path, target: Target, chunks: Iterable[bytes]) -> None:
    """Write a target to ``directory/<sha256>.<name>`` as it is verified (nothing is left under that
    name unless every byte checked out)."""
    final = directory / f"{target.sha256}.{target.name}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(final, chunks, mode=0o644)
    except OSError as exc:
        raise NodeError(f"{final}: cannot write: {exc.strerror or exc}") from None


def verified_stream(session: Session, target: Target, kind: str) -> Iterator[bytes]:
    """The target's bytes as they arrive, bounded by its length and checked against its sha256
    (the last chunk raises if the whole does not match).  Safe mode: only while metadata is fresh."""
    session.repo.check_fresh()
    object_name = session.repo.object_name(target)
    what = f"{kind} {target.name} ({session.targets.describe(object_name)})"
    stream = session.targets.stream(object_name, target.length)
    if stream is None:
        raise TargetError(f"{what}: not found")
    return checked(stream, target.length, target.sha256, what)


def cache_migrations(session: Session, update: Update) -> list[str]:
    """updog's ``retrieve_migrations``: the forward migration list plus ``manifest.json``, each
    verified and saved as ``<sha256>.<name>`` (SPEC §8.4).  Returns the names."""
    names = retrieve_list(session.release.version_id, update.version, session.manifest.migrations)
    targets = [session.repo.require(name) for name in names]
    for name, target in zip(names, targets):  # saved under its resolved name, as tough saves it: that
        # must be a basename (SPEC §2.1), a path could lead out of the directory
        if "/" in target.name or "\0" in target.name:
            raise NodeError(f"{MANIFEST_NAME}: migration {name!r} is not a plain file name; refusing to save it in "
                            f"{session.paths.migrations_dir}")
    for name, target in zip(names, targets):
        if _cached_target(session.paths.migrations_dir, target) is not None:
            continue
        if name == MANIFEST_NAME:
            _save_target(session.paths.migrations_dir, target, [session.manifest_raw])
            continue
        _save_target(session.paths.migrations_dir, target, verified_stream(session, target, "migration"))
    session.repo.cache_metadata(DirectoryStore(session.paths.metadata_cache))
    return names


# --- the disk side -------------------------------------------------------------------


@dataclass
class DiskState:
    disk: Disk
    active: SetName

    @property
    def sets(self) -> Sets:
        return self.disk.load_sets(self.active)  # GptError when there is no inactive set

    def write(self, sets: Sets, ever_booted: bool | None = None) -> None:
        self.disk.write_sets(sets, ever_booted=ever_booted)


def open_disk(paths: NodePaths) -> DiskState:
    """The disk and its running set: discovered on a host; for a block device given with --disk,
    the running set must be known (discovered or --active-set) so it is never written; a disk
    image runs set A unless --active-set says otherwise."""
    if paths.disk is None:
        path, active = find_os_disk()
        if paths.active_set is not None and paths.active_set != active:
            raise NodeError(f"{path}: set {active} is running, not set {paths.active_set} (--active-set)")
        return DiskState(Disk.open(path), active)
    try:
        block = stat.S_ISBLK(os.stat(paths.disk).st_mode)
    except OSError as exc:
        raise NodeError(f"{paths.disk}: {exc.strerror or exc}") from None
    if block and paths.active_set is None:
        try:
            path, active = find_os_disk()
        except GptError:
            path, active = Path(), "A"
        if os.path.realpath(path) != os.path.realpath(paths.disk):
            raise NodeError(f"{paths.disk}: a block device that does not hold the running system; pass "
                            "--active-set A|B to say which set must not be written")
        return DiskState(Disk.open(paths.disk), active)
    return DiskState(Disk.open(paths.disk), paths.active_set or "A")


def stage(session: Session, update: Update, state: DiskState, progress: Progress = NO_PROGRESS) -> None:
    """Clear the inactive set, stream root, boot and hash into it (each image a job of ``progress``),
    mark it valid."""
    sets = state.sets
    inactive = state.disk.sets[sets.inactive]
    state.write(gptprio.clear_inactive(sets))  # from here on a half-written set is never bootable
    for kind in IMAGE_ORDER:
        target = session.repo.require(getattr(update.images, kind))
        partition = getattr(inactive, kind)
        progress.start(f"{kind} image", target.length)
        try:
            write_image(counted(verified_stream(session, target, f"{kind} image"), progress), state.disk.path,
                        partition.offset, partition.size, f"{kind} image {target.name}")
        finally:
            progress.stop()
    state.write(gptprio.mark_inactive_valid(state.sets))


def reboot(paths: NodePaths) -> None:
    """updog ``-r``: ignore SIGTERM (the shutdown sends it to us) and run the reboot command."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        done = subprocess.run(list(paths.reboot_command), check=False)
    except OSError as exc:
        raise NodeError(f"reboot command {' '.join(paths.reboot_command)!r} failed: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise NodeError(f"reboot command {' '.join(paths.reboot_command)!r} exited with {done.returncode}")


# --- commands ------------------------------------------------------------------------


def json_text(obj: object) -> str:
    """updog's JSON output: the manifest's pretty layout plus a newline."""
    return dumps_pretty(obj) + "\n"


def _update_json(update: Update, downgrade: bool) -> dict[str, Any]:
    obj = update.to_json_obj()
    obj["downgrade"] = downgrade
    return obj


def _describe(variant: str, selection: Selection) -> str:
    assert selection.update is not None
    line = f"{variant} {selection.update.version}"
    if selection.downgrade:
        line += f" (downgrade from {selection.current})"
    return line


def _choose(session: Session, flags: Flags, out: Output, version_lock: str | None = None) -> Selection:
    host = Host(session.variant, host_arch(session.paths), session.release.version_id, session.config.seed)
    overrides = Overrides(session.config.version_lock if version_lock is None else version_lock, flags.image,
                          flags.ignore_waves or session.config.ignore_waves)
    selection = select(session.manifest, host, session.now, overrides)
    if flags.log_level in ("debug", "trace"):
        for considered in selection.considered:
            out.err(f"debug: {considered.update.variant} {considered.update.arch} {considered.update.version}: "
                    f"{considered.why}")
        out.err(f"debug: {selection.decision}")
    return selection


def check_update(session: Session, flags: Flags, out: Output) -> None:
    if flags.all:
        # updog's list_updates: no --image, and version_lock is never read
        selection = _choose(session, Flags(ignore_waves=flags.ignore_waves, log_level=flags.log_level), out, LATEST)
        if flags.json:
            out.out(json_text([u.to_json_obj() for u in selection.applicable]))
        else:
            for update in selection.applicable:
                out.err(f"{update.variant} {update.version}")
        return
    selection = _choose(session, flags, out)
    if selection.update is None:
        out.err("No update available")
        out.code = 1
        return
    if flags.json:
        out.out(json_text(_update_json(selection.update, selection.downgrade)))
    else:
        out.out(_describe(session.variant, selection))


def update(session: Session, flags: Flags, out: Output, apply: bool) -> None:
    """``update`` (apply=True) and ``update-image`` (apply=False)."""
    selection = _choose(session, flags, out)
    chosen = selection.update
    if chosen is None:
        out.err("No update required")
        return
    state = open_disk(session.paths)
    state.sets  # noqa: B018 - fails early (no inactive set) before anything is downloaded
    if selection.downgrade:
        out.err(f"Starting downgrade to {chosen.version} from {selection.current}")
    else:
        out.err(f"Starting update to {chosen.version}")
    session.transport.query["target"] = str(chosen.version)
    names = cache_migrations(session, chosen)
    session.transport.query["migrations"] = ",".join(names)
    stage(session, chosen, state, out.progress)
    if apply:
        state.write(gptprio.upgrade_to_inactive(state.sets))
        if flags.reboot:
            reboot(session.paths)
    if flags.json:
        out.out(json_text(_update_json(chosen, selection.downgrade)))
    else:
        out.out(f"Update applied: {_describe(session.variant, selection)}")


def update_apply(paths: NodePaths, flags: Flags) -> None:
    state = open_disk(paths)
    state.write(gptprio.upgrade_to_inactive(state.sets))
    if flags.reboot:
        reboot(paths)


def update_revert(paths: NodePaths) -> None:
    state = open_disk(paths)
    state.write(gptprio.cancel_upgrade(state.sets))


def disk_status(paths: NodePaths) -> Status:
    state = open_disk(paths)
    return status(state.disk, state.active)


def status_text(report: Status) -> list[str]:
    """signpost's ``status`` layout, each set with its own partitions (SPEC §9.7)."""
    lines = [f"OS disk: {report.get('disk', '?')}"]
    for name in ("A", "B"):
        entry = report["sets"].get(name)
        if entry is None:
            continue
        parts = " ".join(f"{kind}={p['offset']}+{p['size']}" for kind, p in entry["partitions"].items())
        lines.append(f"Set {name}: {parts} priority={entry['priority']} tries_left={entry['tries_left']} "
                     f"successful={str(entry['successful']).lower()}")
    lines.append(f"Active: Set {report['active']}")
    lines.append(f"Next: {'Set ' + report['next'] if report['next'] else 'None'}")
    return lines


def simulate_boot(paths: NodePaths) -> SetName | None:
    """What GRUB does at the next boot (decrementing ``tries_left`` of the chosen set)."""
    state = open_disk(paths)
    chosen, after = gptprio.grub_boot(state.sets)
    if chosen is not None:
        state.write(after)
    return chosen


def rollback_to_inactive(paths: NodePaths) -> None:
    """signpost ``rollback-to-inactive``: boot the other set next, if it would boot."""
    state = open_disk(paths)
    state.write(gptprio.rollback_to_inactive(state.sets))


def mark_successful_boot(paths: NodePaths) -> None:
    state = open_disk(paths)
    state.write(gptprio.mark_successful_boot(state.sets), ever_booted=True)
