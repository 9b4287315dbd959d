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

Which repositories: the ``(variant, arch)`` pairs given, else the config's ``variants:``, else the
ones discovered below ``metadata_url``: every ``<variant>/<arch>/`` holding ``timestamp.json``
(local directories and S3 prefixes can be listed, :class:`repo_tool.storage.base.Listable`; an
``http(s)://`` base cannot, which is a configuration error naming the fix).  Listing, probing
and loading run on a small thread pool.

Must not: judge anything but expiry (signatures and the rest are the load's, and the audit's), or
stop at a repository that fails to load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from repo_tool.audit.anchor import config_trusted_root
from repo_tool.audit.expiry import Expiry, expiry_status
from repo_tool.config import RepoConfig
from repo_tool.core.instant import NANOS_PER_SECOND, format_instant
from repo_tool.errors import ConfigError, RepoToolError
from repo_tool.storage import open_storage
from repo_tool.storage.base import Listable, Storage
from repo_tool.trust.metadata import check_safe_name
from repo_tool.trust.model import RoleFile
from repo_tool.trust.verifier import TIMESTAMP, LoadOptions, open_repo, role_file_name

OK = "OK"
SOON = "EXPIRES SOON"
EXPIRED = "EXPIRED"
DEFAULT_WITHIN = "3 days"  # pubsys's task default
JOBS = 8

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class RepoRef:
    """One repository to check: ``repo`` is the config's repository name (None for a bare URL)."""

    repo: str | None
    variant: str | None
    arch: str | None
    meta: Storage
    trusted_root: bytes
    root_name: str = "trusted root"

    @property
    def label(self) -> str:
        if self.variant is None or self.arch is None:
            return self.meta.url if self.repo is None else f"{self.repo} ({self.meta.url})"
        pair = f"{self.variant}/{self.arch}"
        return pair if self.repo is None else f"{self.repo} {pair}"


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
    roles = [_role_expiry("root", f"{repo.root.version}.root.json", repo.root, at, within)]
    roles += [_role_expiry(f.role, name, f, at, within) for f, name in repo.role_files()]
    roles += [_role_expiry(role, role_file_name(role, f.version, repo.consistent), f, at, within)
              for role, f in sorted(repo.delegated.items())]
    return RepoResult(ref, roles)


def _parallel(func: Callable[[_T], _R], items: Iterable[_T], jobs: int) -> list[_R]:
    """``func`` over ``items`` on at most ``jobs`` threads, results in the order of ``items``."""
    work = list(items)
    if len(work) <= 1 or jobs <= 1:
        return [func(item) for item in work]
    with ThreadPoolExecutor(min(jobs, len(work)), thread_name_prefix="check-expirations") as pool:
        return list(pool.map(func, work))


def _listable(base: Storage, config: RepoConfig | None) -> Listable:
    if not isinstance(base, Listable):
        where = f"{config.source}: repo {config.name}: " if config is not None else ""
        raise ConfigError(f"{where}metadata_url {base.url} cannot be listed (HTTP); list the repositories as "
                          "variants: [VARIANT/ARCH, ...] in the config or pass --variant/--arch")
    return base


def discover(base: Storage, jobs: int = JOBS) -> list[tuple[str, str]]:
    """Every ``<variant>/<arch>/`` below ``base`` holding ``timestamp.json``, sorted.  Names outside
    the safe set are skipped (they cannot be variants or arches).  ``base`` must be listable."""
    listing = _listable(base, None)

    def arches(variant: str) -> list[tuple[str, str]]:
        found = _listable(base.child(variant), None).list_dirs()
        return [(variant, arch) for arch in found if _safe(arch)]

    candidates = [pair for found in _parallel(arches, [v for v in listing.list_dirs() if _safe(v)], jobs)
                  for pair in found]

    def live(pair: tuple[str, str]) -> bool:
        try:
            return base.child(*pair).size(TIMESTAMP) is not None
        except RepoToolError:
            return True  # cannot tell: keep it, so that loading it reports the problem

    present = _parallel(live, candidates, jobs)
    return [pair for pair, keep in zip(candidates, present) if keep]


def _safe(name: str) -> bool:
    try:
        check_safe_name(name, "name")
    except RepoToolError:
        return False
    return True


def config_refs(config: RepoConfig, pairs: list[tuple[str, str]], jobs: int = JOBS) -> list[RepoRef | RepoResult]:
    """The repositories of ``config`` to check: ``pairs``, else ``variants:``, else discovered.

    A base that cannot be listed (HTTP) without pairs or ``variants:`` is a ConfigError.  A listing
    that fails, or finds nothing, is returned as a :class:`RepoResult` with the error, so that the
    other configured repositories are still checked."""
    root = config_trusted_root(config).data
    base = open_storage(config.metadata_url, config.base_dir, config.aws)
    chosen = pairs or config.variants
    if not chosen:
        _listable(base, config)
        whole = RepoRef(config.name, None, None, base, root, str(config.root))
        try:
            chosen = discover(base, jobs)
        except RepoToolError as exc:
            return [RepoResult(whole, error=f"cannot discover repositories: {exc.message}")]
        if not chosen:
            return [RepoResult(whole, error=f"no repositories found below {base.url} (no VARIANT/ARCH/{TIMESTAMP}); "
                                            "check metadata_url or list variants: in the config")]
    refs: list[RepoRef | RepoResult] = []
    for variant, arch in chosen:
        check_safe_name(variant, "variant")
        check_safe_name(arch, "arch")
        refs.append(RepoRef(config.name, variant, arch, base.child(variant, arch), root, str(config.root)))
    return refs


def check_expirations(refs: list[RepoRef | RepoResult], at: int, within: int, within_text: str,
                      jobs: int = JOBS) -> Report:
    """Check every repository in ``refs`` (results already known are kept as they are), in order."""

    def one(item: RepoRef | RepoResult) -> RepoResult:
        return item if isinstance(item, RepoResult) else check_repo(item, at, within)

    return Report(at, within, within_text, _parallel(one, refs, jobs))
