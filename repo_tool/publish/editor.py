"""One variant/arch TUF repository: edit, sign, and ordered write.

Loading and verifying is :mod:`repo_tool.trust.verifier`'s job (the same client code
nodes and the auditor run).

* :class:`RepoEditor` copies every existing target entry verbatim, adds or
  replaces entries, and builds new targets/snapshot/timestamp files whose
  versions are one above what is on storage (Decision 8), signed by every
  configured key and self-checked against the SPEC §3.2 checklist.
* :func:`write_plan` writes in the only safe order (SPEC §4): targets, new
  roots, ``V.targets.json``, ``V.snapshot.json``, and ``timestamp.json`` last,
  which is swapped only if it is still the one that was loaded.

Must not: load or verify a repository, or write a plan that is unsigned or failed its checks.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repo_tool.core import progress as core_progress
from repo_tool.core.instant import NANOS_PER_SECOND, format_instant
from repo_tool.errors import RepoToolError, VerificationError
from repo_tool.signing.sign import sign_role
from repo_tool.signing.signers import KeySigner
from repo_tool.storage.base import ConflictError, Linkable, Storage, StorageError
from repo_tool.storage.staging import StagedBatch, Streamable
from repo_tool.trust.metadata import Expirations, new_snapshot, new_targets, new_timestamp, target_entry
from repo_tool.trust.model import SIZE_LIMITS, RoleFile, SignedPart, parse_role
from repo_tool.trust.rules import write_problems
from repo_tool.trust.verifier import TIMESTAMP, Repo

# --- editing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Streamed:
    """A target's bytes held elsewhere (a re-root's upstream): ``open`` starts a stream that checks
    them as they pass and fails after the last chunk if they are not the listed ones; ``where`` says
    where they come from, for reports."""

    open: Callable[[], Generator[bytes, None, None]]
    where: str


@dataclass
class NewTarget:
    name: str
    length: int
    sha256: str
    source: Path | bytes | Streamed
    mtime_ns: int | None = None  # of a source file when it was hashed
    link: bool = False  # stored as a link to the source file (--link-target), not a copy

    @property
    def object_name(self) -> str:
        return f"{self.sha256}.{self.name}"


@dataclass
class Plan:
    """Everything a write would do; nothing is written until :func:`write_plan`."""

    targets: list[NewTarget]
    roots: list[tuple[str, bytes]]
    targets_file: tuple[str, bytes]
    snapshot_file: tuple[str, bytes]
    timestamp_file: bytes
    timestamp_expected: bytes | None
    versions: dict[str, int]
    expires: dict[str, int]
    signed: bool = True
    built: dict[str, SignedPart] = field(default_factory=dict, repr=False)  # what each new role file signs


RoleSigners = Mapping[str, list[KeySigner]]


@dataclass(frozen=True)
class BuildInputs:
    """What a build needs besides the edit: the keys, expirations counted from ``start``, ``now``
    (to refuse files that would be expired already) and the metadata storage (to skip versions a
    failed run left there)."""

    signers: RoleSigners
    start: int
    expirations: Expirations
    now: int | None = None
    meta: Storage | None = None


class RepoEditor:
    """Edit the target list of a loaded (or new) repository and produce a signed :class:`Plan`."""

    def __init__(self, root: RoleFile, current: Repo | None, new_roots: list[RoleFile] | None = None) -> None:
        self.root = root
        self.current = current
        self.new_roots = new_roots or []
        if current is not None:
            self.targets: dict[str, Any] = dict(current.targets.signed["targets"])
            self.delegations = current.targets.signed.get("delegations")
        else:
            self.targets = {}
            self.delegations = None
        self.added: list[NewTarget] = []

    def add_target(self, target: NewTarget, custom: dict[str, Any] | None = None, replace: bool = False) -> bool:
        """Add a target; True if the listing changed.  Same name with another hash is an error unless
        ``replace`` (manifest.json)."""
        existing = self.targets.get(target.name)
        if existing is not None:
            hashes = existing.get("hashes", {})
            if str(hashes.get("sha256", "")).lower() == target.sha256 and existing.get("length") == target.length:
                return False
            if not replace:
                raise VerificationError(
                    f"target {target.name} is already in the repository with other content "
                    f"(sha256 {hashes.get('sha256')}); target names must not be reused"
                )
            if custom is None and isinstance(existing.get("custom"), dict):
                custom = existing["custom"]
        self.targets[target.name] = target_entry(target.length, target.sha256, custom)
        self.added.append(target)
        return True

    def set_custom(self, name: str, custom: dict[str, Any] | None) -> None:
        entry = dict(self.targets[name])
        entry.pop("custom", None)
        if custom:
            entry["custom"] = custom
        self.targets[name] = entry

    def remove_target(self, name: str) -> None:
        self.targets.pop(name, None)

    def build(self, signers: RoleSigners, start: int, expirations: Expirations, now: int | None = None,
              meta: Storage | None = None) -> Plan:
        """Sign new targets, snapshot and timestamp files: :meth:`signed` of these inputs."""
        return self.signed(BuildInputs(signers, start, expirations, now, meta))

    def signed(self, inputs: BuildInputs) -> Plan:
        """Sign new targets, snapshot and timestamp files (versions = on-storage + 1).

        With ``inputs.meta``, a version whose file is already on storage (left by a publish that
        failed before its ``timestamp.json``) is skipped, so a rerun converges.  With
        ``inputs.now``, files that would already be expired are refused."""
        return self._build(inputs, sign=True)

    def unsigned(self, inputs: BuildInputs) -> Plan:
        """The same plan as :meth:`signed`, with the same checks, but nothing signed: the signers
        must still meet every threshold, as they must for the real run."""
        return self._build(inputs, sign=False)

    def _build(self, inputs: BuildInputs, sign: bool) -> Plan:
        current = self.current
        delegations = self.delegations
        if isinstance(delegations, dict) and delegations.get("roles"):
            raise VerificationError("the repository has delegated roles, which this tool does not edit")
        if current is not None and not current.consistent:
            raise VerificationError("the repository does not use consistent snapshots; this tool writes "
                                    "only consistent-snapshot repositories")
        versions = {
            "targets": current.targets.version + 1 if current else 1,
            "snapshot": current.snapshot.version + 1 if current else 1,
            "timestamp": current.timestamp.version + 1 if current else 1,
        }
        if inputs.meta is not None:
            for role in ("targets", "snapshot"):
                while inputs.meta.size(f"{versions[role]}.{role}.json") is not None:
                    versions[role] += 1
        start, expirations = inputs.start, inputs.expirations
        expires = {
            "targets": start + expirations.targets,
            "snapshot": start + expirations.snapshot,
            "timestamp": start + expirations.timestamp,
        }
        root = self.root.signed
        targets_signed = new_targets(versions["targets"], expires["targets"], self.targets, delegations)

        built: dict[str, SignedPart] = {}

        def signed_file(signed: dict[str, Any]) -> bytes:
            role = str(signed["_type"])
            built[role] = SignedPart.of(signed)
            raw, _ = sign_role(built[role], root, list(inputs.signers.get(role, [])), sign=sign)
            return raw

        targets_raw = signed_file(targets_signed)
        snapshot_raw = signed_file(new_snapshot(versions["snapshot"], expires["snapshot"], targets_raw,
                                                versions["targets"]))
        timestamp_raw = signed_file(new_timestamp(versions["timestamp"], expires["timestamp"], snapshot_raw,
                                                  versions["snapshot"]))
        roots = [(f"{r.version}.root.json", r.raw) for r in self.new_roots]
        plan = Plan(
            targets=list({t.object_name: t for t in self.added if t.name in self.targets}.values()),
            roots=roots,
            targets_file=(f"{versions['targets']}.targets.json", targets_raw),
            snapshot_file=(f"{versions['snapshot']}.snapshot.json", snapshot_raw),
            timestamp_file=timestamp_raw,
            timestamp_expected=current.timestamp.raw if current else None,
            versions=versions,
            expires=expires,
            built=built,
        )
        self_check(plan, root if sign else None, inputs.now)
        plan.signed = sign
        return plan


def self_check(plan: Plan, root: dict[str, Any] | None, now: int | None = None) -> None:
    """SPEC §3.2 rule 12: every file must pass the write checklist before anything is written,
    and (given ``now``) none may be expired already."""
    files = [
        *((name, "root", raw) for name, raw in plan.roots),
        (plan.targets_file[0], "targets", plan.targets_file[1]),
        (plan.snapshot_file[0], "snapshot", plan.snapshot_file[1]),
        (TIMESTAMP, "timestamp", plan.timestamp_file),
    ]
    for name, role, raw in files:
        problems = write_problems(raw, role, None if role == "root" else root, plan.built.get(role))
        if problems:
            raise VerificationError(f"refusing to write {name}: {problems[0]}")
        if now is not None:
            expires = (parse_role(raw, role, name).expires if role == "root"
                       else plan.expires[role] - plan.expires[role] % NANOS_PER_SECOND)  # as written
            if expires <= now:
                raise VerificationError(
                    f"refusing to write {name}: it would be expired already ({format_instant(expires)})"
                )


class Progress(core_progress.Progress):
    """What a write reports as it goes: each object written, and (as the job "uploading") bytes of
    targets sent, from several upload threads at once.  This base shows nothing; the CLI shows names
    and a progress line."""

    def wrote(self, name: str) -> None:
        """``name`` (``targets/<object>`` or a metadata file name) was written."""


UPLOAD_JOBS = 4
"""Target files stored at once (each large one also sends its parts in parallel)."""


def _check_unchanged(target: NewTarget, info: os.stat_result | None = None) -> None:
    """The file (or ``info``, of the link made to it) must still be what was hashed (size and
    modification time)."""
    assert isinstance(target.source, Path)
    try:
        info = info or target.source.stat()
    except OSError as exc:
        raise StorageError(f"{target.source}: {exc.strerror}") from None
    if info.st_size != target.length or (target.mtime_ns is not None and info.st_mtime_ns != target.mtime_ns):
        raise StorageError(f"{target.source} changed after it was hashed", retry="publish again")


def _store_target(target: NewTarget, store: Storage, progress: Progress, batch: StagedBatch | None) -> bool:
    """Store one target; with a ``batch`` (an edit with targets streamed from elsewhere) stage the
    streamed and in-memory ones in it instead, to be shown together once all are stored."""
    if isinstance(target.source, bytes) and batch is not None:
        data = target.source
        return _stage_streamed(target, Streamed(lambda: (chunk for chunk in [data]), "memory"), store, progress, batch)
    if isinstance(target.source, bytes):
        changed = store.create(target.object_name, target.source)
        progress.advance(target.length)
        return changed
    if isinstance(target.source, Streamed):
        assert batch is not None
        return _stage_streamed(target, target.source, store, progress, batch)
    _check_unchanged(target)
    if target.link:
        assert isinstance(store, Linkable)
        changed = store.link_file(target.object_name, target.source, target.length,
                                  lambda info: _check_unchanged(target, info))
        progress.advance(target.length)  # nothing to send: count it as done
        return changed
    sent_before = 0

    def sent(count: int) -> None:
        nonlocal sent_before
        sent_before += count
        progress.advance(count)

    changed = store.put_file(target.object_name, target.source, target.length, sent)
    if not changed:
        progress.advance(target.length - sent_before)  # already stored: count it as done
    return changed


def _stage_streamed(target: NewTarget, source: Streamed, store: Storage, progress: Progress,
                    batch: StagedBatch) -> bool:
    """Stream ``source`` into ``store``, staged in ``batch`` (nothing is opened if the object is there
    already); False if it is."""
    if not isinstance(store, Streamable):
        raise StorageError(f"{store.url}: cannot store a target streamed from elsewhere")
    sent_before = 0

    def sent(count: int) -> None:
        nonlocal sent_before
        sent_before += count
        progress.advance(count)

    def chunks() -> Iterator[bytes]:  # opened on the first chunk taken
        with contextlib.closing(source.open()) as stream:
            yield from stream

    staged = batch.stage(store, target.object_name, chunks(), target.length, sent)
    if not staged:
        progress.advance(target.length - sent_before)
    return staged


def write_targets(targets: list[NewTarget], store: Storage, progress: Progress,
                  jobs: int = UPLOAD_JOBS) -> list[str]:
    """Store ``targets`` with at most ``jobs`` at once; every one is stored when this returns.
    Return the names written (``targets/<object>``), as reported to ``progress``.

    On a failure the uploads already running finish, none is started, and the
    first error is raised.  Objects already present are skipped, so a rerun
    sends only what is missing.  Targets streamed from elsewhere (a re-root's
    upstream) are staged and shown only once every target was stored: one
    that fails verification leaves none of them under its name (any other
    failure keeps those that were stored whole, for the rerun).
    """
    written: list[str] = []
    staged: list[str] = []
    batch = StagedBatch() if any(isinstance(t.source, Streamed) for t in targets) else None
    progress.start("uploading", sum(t.length for t in targets))
    try:
        with ThreadPoolExecutor(max(1, min(jobs, len(targets))), thread_name_prefix="upload") as pool:
            futures = {pool.submit(_store_target, t, store, progress, batch): t for t in targets}
            failure: BaseException | None = None
            for future in as_completed(futures):
                try:
                    if future.result():
                        target = futures[future]
                        if batch is not None and not isinstance(target.source, Path):
                            staged.append(f"targets/{target.object_name}")
                        else:
                            written.append(f"targets/{target.object_name}")
                            progress.wrote(written[-1])
                except BaseException as exc:
                    if failure is None:
                        failure = exc
                        for other in futures:
                            other.cancel()
            if failure is not None:
                raise failure
    except BaseException as exc:
        if batch is not None:
            batch.end(exc)
        raise
    finally:
        progress.stop()
    if batch is not None:
        batch.commit()
    for name in staged:
        written.append(name)
        progress.wrote(name)
    return written


def write_plan(plan: Plan, meta: Storage, targets_store: Storage, progress: Progress | None = None,
               jobs: int = UPLOAD_JOBS) -> list[str]:
    """Write ``plan`` in SPEC §4 order; return the object names written.

    Targets first (in parallel), then ``V.targets.json`` and
    ``V.snapshot.json`` (create-only), then new roots in ascending version,
    and ``timestamp.json`` last, replaced only if it is still the one loaded.
    Roots come after the versioned metadata (SPEC §4 lists them before it):
    clients see nothing of ``V.*`` until ``timestamp.json`` names them, but a
    new root is live at once, so the steps that can lose a race go first and
    the timestamp is checked again just before the roots.  A failure at any
    step before the roots leaves the previous repository live and complete; a
    lost race says which version won.
    """
    if not plan.signed:
        raise VerificationError("refusing to write an unsigned plan")
    if not (meta.writable and targets_store.writable):
        store = meta if not meta.writable else targets_store
        raise StorageError(f"{store.url}: read-only storage; publish to the bucket or directory itself")
    progress = progress or Progress()
    written = write_targets(plan.targets, targets_store, progress, jobs)

    def note(name: str) -> None:
        written.append(name)
        progress.wrote(name)

    roots_live: list[str] = []
    try:
        for name, raw in (plan.targets_file, plan.snapshot_file):
            if meta.create(name, raw):
                note(name)
        if plan.roots and meta.read(TIMESTAMP, SIZE_LIMITS["timestamp"]) != plan.timestamp_expected:
            raise ConflictError(f"{meta.describe(TIMESTAMP)} changed since it was loaded")
        for name, raw in plan.roots:
            if meta.create(name, raw):
                note(name)
            roots_live.append(name)
        meta.swap(TIMESTAMP, plan.timestamp_file, plan.timestamp_expected)
    except ConflictError as exc:
        won = f"{exc.message.replace(' (another publisher?)', '')}; {_winner(meta, plan)}"
        raise exc.reworded(_what_is_live(won, roots_live, "publish on top of it")) from None
    except RepoToolError as exc:
        raise exc.reworded(_what_is_live(exc.message, roots_live)) from None
    note(TIMESTAMP)
    return written


def _what_is_live(message: str, roots_live: list[str], rerun: str | None = None) -> str:
    """After a failed write: whether anything of it is visible to clients.  A new root is live as
    soon as it is stored, so then the rotation must be finished at once."""
    if roots_live:
        return (f"{message}; NOTE: {', '.join(roots_live)} is already live, so clients now need the "
                "timestamp it signs: run the same command (same --root-role) again now to finish the rotation")
    return f"{message}; nothing from this run is live; run the command again to {rerun}" if rerun else message


def _winner(meta: Storage, plan: Plan) -> str:
    """Who won a race, for the loser's message."""
    try:
        raw = meta.read(TIMESTAMP, SIZE_LIMITS["timestamp"])
        version = json.loads(raw)["signed"]["version"] if raw is not None else None
    except Exception:  # a message helper: any failure just makes the message vaguer
        raw, version = None, None
    if raw is not None and raw == plan.timestamp_expected:
        where = "it has stored its metadata but not yet its timestamp.json"
    elif version is not None:
        where = f"{meta.describe(TIMESTAMP)} is now version {version}"
    else:
        where = "the repo changed"
    return f"another publisher won ({where})"
