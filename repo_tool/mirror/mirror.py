"""``mirror``: copy a verified upstream repository to a destination of one's own, incrementally and in
the safe order of SPEC §4, metadata byte for byte (nodes keep upstream's root and signatures).

Order: the targets (each streamed from the source, its length and sha256 checked as it passes, and
staged: a temporary file, an uncompleted multipart upload), then, only once every one of them verified,
the targets shown under their names; then every ``N.root.json`` (write-once), the
versioned delegated, targets and snapshot files (write-once), and ``timestamp.json`` last (replaced
only if it still holds what the plan read).  A run stopped at any point leaves the destination's
previous state reachable (new objects are not referenced until the timestamp moves), and a rerun
skips what is there with the same name and size.

Must not: write anything before the whole source verified (:mod:`repo_tool.mirror.plan`), show any
target under its name before every target verified, or buffer a whole target.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from repo_tool.core.progress import NO_PROGRESS, Progress
from repo_tool.core.versionspec import VersionSpec
from repo_tool.errors import RepoToolError, UsageError, some_failed
from repo_tool.mirror.plan import CATEGORIES, METADATA, ROOT, TARGETS, Item, Location, Plan, make_plan
from repo_tool.storage.base import Storage
from repo_tool.storage.staging import StagedBatch, Streamable
from repo_tool.trust.verifier import TIMESTAMP, Repo, Target, stream_target

__all__ = ["CATEGORIES", "METADATA", "ROOT", "TARGETS", "Counts", "Location", "ManyResult", "MirrorOptions",
           "MirrorResult", "Pair", "mirror", "mirror_each"]


@dataclass(frozen=True)
class MirrorOptions:
    """``versions`` None: every listed target; ``plan``: compute what would be copied, write nothing;
    ``root_name``: the trusted root as messages name it; ``progress``: the bytes of targets copied."""

    versions: VersionSpec | None = None
    plan: bool = False
    root_name: str = "trusted root"
    progress: Progress = NO_PROGRESS


@dataclass
class Counts:
    """Objects and bytes copied and skipped (already at the destination) in one category."""

    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0

    def to_json_obj(self) -> dict[str, int]:
        return {"copied": self.copied, "copied_bytes": self.copied_bytes, "skipped": self.skipped,
                "skipped_bytes": self.skipped_bytes}


@dataclass
class MirrorResult:
    """What a run copied (``plan``: would copy) from ``source`` to ``destination`` (metadata URLs and
    targets URLs), per category (``root``, ``metadata``, ``targets``); the manifest versions it carries
    and the timestamp version the destination moves from (None: it had none) and to."""

    source: tuple[str, str]
    destination: tuple[str, str]
    plan: bool
    versions: list[str]
    timestamp_version: int
    previous_timestamp_version: int | None
    counts: dict[str, Counts] = field(default_factory=lambda: {c: Counts() for c in CATEGORIES})

    def totals(self) -> Counts:
        """The counts of every category added up."""
        every = list(self.counts.values())
        return Counts(sum(c.copied for c in every), sum(c.copied_bytes for c in every),
                      sum(c.skipped for c in every), sum(c.skipped_bytes for c in every))

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "source": {"metadata_url": self.source[0], "targets_url": self.source[1]},
            "destination": {"metadata_url": self.destination[0], "targets_url": self.destination[1]},
            "plan": self.plan,
            "versions": self.versions,
            "timestamp_version": self.timestamp_version,
            "previous_timestamp_version": self.previous_timestamp_version,
            **self.totals().to_json_obj(),
            "categories": {name: counts.to_json_obj() for name, counts in self.counts.items()},
        }

    def text_lines(self) -> list[str]:
        """The result for people: where from and to, the versions, and per category what was copied."""
        verb = "would copy" if self.plan else "copied"
        moved = ("timestamp version unchanged" if self.previous_timestamp_version == self.timestamp_version else
                 f"timestamp version {self.previous_timestamp_version or 'none'} -> {self.timestamp_version}")
        lines = [f"{'plan: ' if self.plan else ''}mirror {self.source[0]} -> {self.destination[0]} ({moved})",
                 f"versions: {', '.join(self.versions) or 'none (no manifest.json)'}"]
        for name, counts in self.counts.items():
            lines.append(f"{name}: {verb} {counts.copied} ({_bytes(counts.copied_bytes)}), skipped "
                         f"{counts.skipped} already there ({_bytes(counts.skipped_bytes)})")
        totals = self.totals()
        lines.append(f"total: {verb} {totals.copied} objects, {_bytes(totals.copied_bytes)}")
        return lines


def _bytes(count: int) -> str:
    return f"{count} bytes" if count < 1 << 20 else f"{count / (1 << 20):.1f} MiB"


def mirror(source: Location, destination: Location, trusted_root: bytes, now: int,
           options: MirrorOptions = MirrorOptions()) -> MirrorResult:
    """Verify ``source`` from ``trusted_root`` at ``now`` and copy what ``destination`` lacks (see the
    module docstring); with ``options.plan`` only count it."""
    for store, flag in ((destination.metadata, "--to-metadata-url"), (destination.targets, "--to-targets-url")):
        if not store.writable or not isinstance(store, Streamable):
            raise UsageError(f"{flag} {store.url}: cannot be written (use a path or s3://BUCKET/PREFIX/)")
    plan = make_plan(source, destination, (trusted_root, options.root_name), now, options.versions)
    result = MirrorResult((source.metadata.url, source.targets.url),
                          (destination.metadata.url, destination.targets.url), options.plan, plan.versions,
                          plan.repo.timestamp.version, plan.previous_version)
    for item in plan.items:
        counts = result.counts[item.category]
        if item.present:
            counts.skipped += 1
            counts.skipped_bytes += item.size
        else:
            counts.copied += 1
            counts.copied_bytes += item.size
    if not options.plan:
        _run(plan, source, destination, options.progress, result.counts[TARGETS].copied_bytes)
    return result


@dataclass(frozen=True)
class Pair:
    """One variant/arch repository of a run over many: its source and destination."""

    variant: str
    arch: str
    source: Location
    destination: Location

    @property
    def label(self) -> str:
        return f"{self.variant}/{self.arch}"


@dataclass
class ManyResult:
    """A run over many variant/arch repositories: each one's result, and each one that failed (and why)."""

    results: list[tuple[Pair, MirrorResult]] = field(default_factory=list)
    failures: list[tuple[Pair, RepoToolError]] = field(default_factory=list)

    def error(self) -> RepoToolError | None:
        """None if every repository was mirrored; else the first failure's kind, naming every failure."""
        return some_failed([(pair.label, exc) for pair, exc in self.failures], len(self.results), "mirrored")

    def to_json_obj(self) -> dict[str, Any]:
        results = [{"variant": pair.variant, "arch": pair.arch, **result.to_json_obj()}
                   for pair, result in self.results]
        return {
            "ok": not self.failures,
            "repositories": results,
            "failed": [{"variant": pair.variant, "arch": pair.arch, "error": exc.message}
                       for pair, exc in self.failures],
            "copied": sum(r["copied"] for r in results),
            "copied_bytes": sum(r["copied_bytes"] for r in results),
        }

    def text_lines(self) -> list[str]:
        lines: list[str] = []
        for pair, result in self.results:
            lines += [f"{pair.label}:", *(f"  {line}" for line in result.text_lines())]
        for pair, exc in self.failures:
            lines.append(f"{pair.label}: FAILED: {exc.message}")
        return lines


def mirror_each(pairs: list[Pair], trusted_root: bytes, now: int, options: MirrorOptions = MirrorOptions()
                ) -> ManyResult:
    """:func:`mirror` each of ``pairs`` in turn (their targets shared: each object is copied once); one
    that fails (a source that does not verify, a write refused) is reported and the others go on."""
    many = ManyResult()
    for pair in pairs:
        try:
            many.results.append((pair, mirror(pair.source, pair.destination, trusted_root, now, options)))
        except RepoToolError as exc:
            many.failures.append((pair, exc))
    return many


def _run(plan: Plan, source: Location, destination: Location, progress: Progress, total: int) -> None:
    """Stage every missing target (streamed, checked); only if all of them verified, commit them, then
    write the metadata, ``timestamp.json`` last.  A target that fails verification discards every one
    staged; a run stopped by anything else keeps those that verified (a rerun resumes)."""
    batch = StagedBatch()
    progress.start("mirror", total)
    try:
        for item in plan.items:
            if item.target is not None and not item.present:
                _stage_target(plan.repo, item.target, (source.targets, destination.targets), batch, progress)
    except BaseException as exc:
        batch.end(exc)
        raise
    finally:
        progress.stop()
    batch.commit()
    for item in plan.items:
        if item.target is None and not item.present:
            _write(item, plan, destination)


def _write(item: Item, plan: Plan, destination: Location) -> None:
    meta = destination.metadata
    assert item.raw is not None
    if item.name == TIMESTAMP:
        meta.swap(TIMESTAMP, item.raw, plan.destination_timestamp)
    else:
        meta.create(item.name, item.raw)


def _stage_target(repo: Repo, target: Target, stores: tuple[Storage, Storage], batch: StagedBatch,
                  progress: Progress) -> None:
    """Stream ``target`` from the source's targets into the destination's (``stores``) under its object
    name, checked as it passes, staged in ``batch`` (not visible until the batch commits)."""
    source, destination = stores
    assert isinstance(destination, Streamable)
    stream = stream_target(repo, source, target)
    with contextlib.closing(stream):
        batch.stage(destination, repo.object_name(target), stream, target.length, progress.advance)
