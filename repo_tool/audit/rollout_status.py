"""``rollout status``: where each variant/arch repository's releases stand in their rollout, fleet-wide.

Every repository is loaded as a node loads it (SPEC §3.5: signatures, versions, hashes, the root
chain and every delegated role), in parallel (:func:`repo_tool.audit.fleet.parallel`), and its
``manifest.json`` target is read and checked against its listed length and hashes.  Expiry is not
a reason to stop reading: a repository whose metadata has expired at ``at`` is still shown, and
flagged as failed (nodes refuse it).  What each update's standing is, is
:mod:`repo_tool.core.standing`'s (updog's readiness, seed by seed).

:class:`FleetStatus` holds the result: one :class:`RepoStatus` per repository, each with its
updates' standings, its earliest metadata expiry and, if it failed, the one-line reason.  Its
:meth:`FleetStatus.rows` is the JSON list (one object per variant/arch/update, a failed repository
as one object with ``"state": "failed"``); the table and the page render the same rows
(:mod:`repo_tool.audit.status_table`, :mod:`repo_tool.audit.status_page`).

Must not: stop at a repository that fails (the others are still read), or write anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from repo_tool.audit.expirations import DEFAULT_WITHIN, expiring_files
from repo_tool.audit.expiry import Expiry, expiry_status
from repo_tool.audit.fleet import JOBS, RepoRef, Unlisted, parallel
from repo_tool.core.instant import format_instant
from repo_tool.core.manifest import MANIFEST_NAME, Manifest
from repo_tool.core.readiness import SEED_COUNT
from repo_tool.core.rollout import pauses_of
from repo_tool.core.standing import STATES, Standing, pairs_of, standings
from repo_tool.errors import RepoToolError, VerificationError
from repo_tool.trust.verifier import LoadOptions, Repo, open_repo, read_manifest

WITHIN = DEFAULT_WITHIN  # expiries inside this window are flagged (pubsys's check-repo-expirations default)
FAILED = "failed"
NO_UPDATE = "none"  # a repository whose manifest lists no update for its variant/arch


@dataclass(frozen=True)
class Expires:
    """A repository's earliest metadata expiry: which file, when, and how that stands at ``at``."""

    file: str
    at: int
    status: Expiry


@dataclass(frozen=True)
class PairStatus:
    """The updates of one variant/arch a status shows (newest first; empty: the manifest has none)."""

    variant: str
    arch: str
    standings: tuple[Standing, ...]


@dataclass
class RepoStatus:
    ref: RepoRef
    pairs: list[PairStatus] = field(default_factory=list)
    expires: Expires | None = None
    error: str | None = None

    def rows(self) -> list[dict[str, Any]]:
        """One JSON object per update shown (per variant/arch with no update; one if nothing loaded)."""
        base: dict[str, Any] = {"repo": self.ref.repo, "variant": self.ref.variant, "arch": self.ref.arch,
                                "metadata_url": self.ref.meta.url}
        tail = {
            "expires_at": None if self.expires is None else format_instant(self.expires.at),
            "expires_file": None if self.expires is None else self.expires.file,
            "expiry": None if self.expires is None else self.expires.status.value,
            "error": self.error,
        }
        if not self.pairs:
            return [{**base, **_EMPTY, "state": FAILED if self.error else NO_UPDATE, **tail}]
        rows = []
        for pair in self.pairs:
            where = {**base, "variant": pair.variant, "arch": pair.arch}
            if not pair.standings:
                rows.append({**where, **_EMPTY, **tail})
            rows += [{**where, **s.to_json(), **tail} for s in pair.standings]
        return rows


_EMPTY: dict[str, Any] = {
    "version": None, "max_version": None, "state": NO_UPDATE, "seeds_offered": 0, "seed_count": SEED_COUNT,
    "fleet_fraction": 0.0, "current_wave": None, "wave_count": 0, "next_wave_at": None, "complete_at": None,
    "paused_since": None, "waves": [],
}


@dataclass
class FleetStatus:
    at: int
    within: int
    repos: list[RepoStatus]

    def rows(self) -> list[dict[str, Any]]:
        return [row for repo in self.repos for row in repo.rows()]

    @property
    def failed(self) -> list[RepoStatus]:
        """The repositories that failed verification (or could not be read), each with its reason."""
        return [r for r in self.repos if r.error is not None]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary(self) -> str:
        """``21 repositories at T: 22 updates: 19 rolling, 1 paused, 2 complete; 1 failed``."""
        shown = [row["state"] for row in self.rows() if row["version"] is not None]
        counts = Counter(shown)
        parts = ", ".join(f"{counts[state]} {state}" for state in STATES if counts[state])
        noun = "repository" if len(self.repos) == 1 else "repositories"
        text = f"{len(self.repos)} {noun} at {format_instant(self.at)}: {len(shown)} update{'s' * (len(shown) != 1)}"
        text += f": {parts}" if parts else ""
        return text + (f"; {len(self.failed)} failed" if self.failed else "")


def _earliest(repo: Repo, at: int, within: int) -> Expires:
    _role, file, first = min(expiring_files(repo), key=lambda item: item[2].expires)
    return Expires(file, first.expires, expiry_status(first.expires, at, within))


def _manifest(repo: Repo, ref: RepoRef) -> tuple[Manifest, dict[str, Any]]:
    """The verified ``manifest.json`` and the pause records of its listing."""
    if ref.targets is None:
        raise VerificationError(f"{MANIFEST_NAME}: no targets location to read it from")
    manifest = read_manifest(repo, ref.targets)
    target = repo.find(MANIFEST_NAME)
    if manifest is None or target is None:
        raise VerificationError(f"{MANIFEST_NAME} is not listed in targets: nodes find no update")
    return manifest, pauses_of(target.custom)


def repo_status(ref: RepoRef, at: int, within: int, only: Sequence[tuple[str, str]] = ()) -> RepoStatus:
    """Load ``ref`` and report its updates' standings at ``at``.  A repository named by URL alone
    (no variant/arch) shows the pairs ``only`` names, else every variant/arch its manifest lists."""
    result = RepoStatus(ref)
    try:
        repo = open_repo(ref.meta, ref.trusted_root, at,
                         options=LoadOptions(safe=False, trusted_root_name=ref.root_name))
        result.expires = _earliest(repo, at, within)
        manifest, pauses = _manifest(repo, ref)
    except RepoToolError as exc:
        result.error = exc.message
        return result
    if ref.variant is not None and ref.arch is not None:
        pairs: Sequence[tuple[str, str]] = [(ref.variant, ref.arch)]
    else:
        pairs = list(only) or pairs_of(manifest)
    result.pairs = [PairStatus(v, a, tuple(standings(manifest, v, a, pauses, at))) for v, a in pairs]
    if result.expires.status is Expiry.EXPIRED:
        result.error = (f"{result.expires.file} expired at {format_instant(result.expires.at)}: "
                        "nodes refuse this repository")
    return result


def fleet_status(refs: Sequence[RepoRef | Unlisted], at: int, within: int, only: Sequence[tuple[str, str]] = (),
                 jobs: int = JOBS) -> FleetStatus:
    """Every repository in ``refs``, read in parallel, in order (a base that could not be listed is failed)."""

    def one(item: RepoRef | Unlisted) -> RepoStatus:
        if isinstance(item, Unlisted):
            return RepoStatus(item.ref, error=item.error)
        return repo_status(item, at, within, only)

    return FleetStatus(at, within, parallel(one, refs, jobs, "rollout-status"))
