"""``check-expirations``: when does each role of every variant/arch repository expire?

pubsys's ``check-repo-expirations`` (SPEC §10.4) over many repositories at once, for cron and CI.
Each repository is loaded as §3.5 describes in Unsafe mode (item 7: signatures, versions, hashes
and the root chain are checked, expiry is not), and the expiry of its final root, timestamp,
snapshot and targets (and of any delegated role, which only foreign repos have) is compared with
the instant ``at`` and the window ``within``:

* ``EXPIRED``: ``expires <= at`` (nothing is left: a client reading targets now refuses);
* ``EXPIRES SOON``: ``expires <= at + within`` (upstream flags expiry ≤ the limit);
* ``OK`` otherwise

(the rule is :func:`repo_tool.audit.expiry.expiry_status`, shared with ``audit``).

The JSON result is ``"failed"`` if a repository did not load, else ``"expiring"`` or ``"ok"``:
``"ok"`` only if every role of every repository is ``OK`` and every repository
loaded; a repository that fails to load (missing file, bad signature ...) is reported with its
one-line reason and the others are still checked.

Which repositories, and reading them in parallel, is :mod:`repo_tool.audit.fleet`'s.

Must not: judge anything but expiry (signatures and the rest are the load's, and the audit's), or
stop at a repository that fails to load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from repo_tool.audit.expiry import Expiry, expiry_status
from repo_tool.audit.fleet import JOBS, RepoRef, Unlisted, parallel
from repo_tool.core.instant import NANOS_PER_SECOND, format_instant
from repo_tool.errors import RepoToolError
from repo_tool.trust.model import RoleFile
from repo_tool.trust.verifier import LoadOptions, Repo, open_repo, role_file_name

OK = "OK"
SOON = "EXPIRES SOON"
EXPIRED = "EXPIRED"
DEFAULT_WITHIN = "3 days"  # pubsys's task default


@dataclass(frozen=True)
class RoleExpiry:
    role: str
    file: str
    version: int
    expires: int  # ns since the epoch
    remaining: int  # ns from ``at`` (negative once expired)
    status: str

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "file": self.file,
            "version": self.version,
            "expires": format_instant(self.expires),
            "remaining_seconds": self.remaining // NANOS_PER_SECOND,  # floor: -0.5 s is -1
            "status": self.status,
        }


@dataclass
class RepoResult:
    ref: RepoRef
    roles: list[RoleExpiry] = field(default_factory=list)
    error: str | None = None

    @property
    def flagged(self) -> bool:
        return self.error is not None or any(r.status != OK for r in self.roles)

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": self.ref.repo,
            "variant": self.ref.variant,
            "arch": self.ref.arch,
            "metadata_url": self.ref.meta.url,
            "roles": [r.to_json() for r in self.roles],
            "error": self.error,
        }


@dataclass
class Report:
    at: int
    within: int
    within_text: str
    repos: list[RepoResult]

    @property
    def ok(self) -> bool:
        return not any(r.flagged for r in self.repos)

    def counts(self) -> dict[str, int]:
        """Repositories by their worst finding: failed to load, expired, expiring soon, ok."""
        result = {"failed": 0, EXPIRED: 0, SOON: 0, OK: 0}
        for repo in self.repos:
            statuses = {r.status for r in repo.roles}
            key = "failed" if repo.error else EXPIRED if EXPIRED in statuses else SOON if SOON in statuses else OK
            result[key] += 1
        return result

    def summary(self) -> str:
        counts = self.counts()
        parts = [f"{counts[OK]} ok"]
        if counts[SOON]:
            parts.append(f"{counts[SOON]} with roles expiring within {self.within_text}")
        if counts[EXPIRED]:
            parts.append(f"{counts[EXPIRED]} with expired roles")
        if counts["failed"]:
            parts.append(f"{counts['failed']} failed to load")
        noun = "repository" if len(self.repos) == 1 else "repositories"
        return f"{len(self.repos)} {noun} checked at {format_instant(self.at)}: {', '.join(parts)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "at": format_instant(self.at),
            "within": self.within_text,
            "repos": [r.to_json() for r in self.repos],
            "ok": self.ok,  # as audit's: false when the exit code is 1
            "result": "failed" if any(r.error for r in self.repos) else "ok" if self.ok else "expiring",
            "counts": self.counts(),
        }

    @property
    def failed(self) -> list[RepoResult]:
        """The repositories that did not load (each with its one-line reason)."""
        return [r for r in self.repos if r.error is not None]

    @property
    def exit_code(self) -> int:
        """1 if any role expires within the window (or has expired) or a repository did not load, else 0."""
        return 0 if self.ok else 1


_LABELS = {Expiry.OK: OK, Expiry.SOON: SOON, Expiry.EXPIRED: EXPIRED}


def status_of(expires: int, at: int, within: int) -> str:
    """The label of :func:`repo_tool.audit.expiry.expiry_status` (the one rule) in this report."""
    return _LABELS[expiry_status(expires, at, within)]


def _role_expiry(role: str, file: str, role_file: RoleFile, at: int, within: int) -> RoleExpiry:
    return RoleExpiry(role, file, role_file.version, role_file.expires, role_file.expires - at,
                      status_of(role_file.expires, at, within))


def check_repo(ref: RepoRef, at: int, within: int) -> RepoResult:
    """Load ``ref`` (Unsafe: no expiry checks) and report each role's expiry."""
    try:
        repo = open_repo(ref.meta, ref.trusted_root, at,
                         options=LoadOptions(safe=False, trusted_root_name=ref.root_name))
    except RepoToolError as exc:
        return RepoResult(ref, error=exc.message)
    return RepoResult(ref, [_role_expiry(role, file, f, at, within) for role, file, f in expiring_files(repo)])


def expiring_files(repo: Repo) -> list[tuple[str, str, RoleFile]]:
    """Every role file of a loaded repository that expires, as ``(role, file name, file)``: its final
    root, timestamp, snapshot and targets, and any delegated role loaded."""
    files = [("root", f"{repo.root.version}.root.json", repo.root)]
    files += [(f.role, name, f) for f, name in repo.role_files()]
    files += [(role, role_file_name(role, f.version, repo.consistent), f) for role, f in sorted(repo.delegated.items())]
    return files


def check_expirations(refs: Sequence[RepoRef | Unlisted], at: int, within: int, within_text: str,
                      jobs: int = JOBS) -> Report:
    """Check every repository in ``refs`` (a base that could not be listed is reported failed), in order."""

    def one(item: RepoRef | Unlisted) -> RepoResult:
        return RepoResult(item.ref, error=item.error) if isinstance(item, Unlisted) else check_repo(item, at, within)

    return Report(at, within, within_text, parallel(one, refs, jobs, "check-expirations"))
