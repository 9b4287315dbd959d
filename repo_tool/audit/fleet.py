"""Which variant/arch repositories a fleet-wide read covers, and reading many at once.

``check-expirations`` and ``rollout status`` both read every repository of a config (or one by
URL).  Which ones: the ``(variant, arch)`` pairs given, else the config's ``variants:``, else the
ones discovered below ``metadata_url``: every ``<variant>/<arch>/`` holding ``timestamp.json``
(local directories and S3 prefixes can be listed, :class:`repo_tool.storage.base.Listable`; an
``http(s)://`` base cannot, which is a configuration error naming the fix).  Listing, probing and
loading run on a small thread pool (:func:`parallel`).

Must not: load or judge a repository (each command does, with its own rules), or stop at a listing
that fails (it is returned as an :class:`Unlisted`, so the other repositories are still read).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from repo_tool.audit.anchor import config_trusted_root
from repo_tool.config import RepoConfig
from repo_tool.errors import ConfigError, RepoToolError
from repo_tool.storage import open_storage
from repo_tool.storage.base import Listable, Storage
from repo_tool.trust.metadata import check_safe_name
from repo_tool.trust.verifier import TIMESTAMP

JOBS = 8

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class RepoRef:
    """One repository to read: ``repo`` is the config's repository name (None for a bare URL);
    ``targets`` the shared targets storage (None where only metadata is read)."""

    repo: str | None
    variant: str | None
    arch: str | None
    meta: Storage
    trusted_root: bytes
    root_name: str = "trusted root"
    targets: Storage | None = None

    @property
    def label(self) -> str:
        if self.variant is None or self.arch is None:
            return self.meta.url if self.repo is None else f"{self.repo} ({self.meta.url})"
        pair = f"{self.variant}/{self.arch}"
        return pair if self.repo is None else f"{self.repo} {pair}"


@dataclass(frozen=True)
class Unlisted:
    """A configured base whose repositories could not be listed (or none were found): ``ref`` names
    the base, ``error`` says why in one line."""

    ref: RepoRef
    error: str


def parallel(func: Callable[[_T], _R], items: Iterable[_T], jobs: int = JOBS, name: str = "fleet") -> list[_R]:
    """``func`` over ``items`` on at most ``jobs`` threads, results in the order of ``items``."""
    work = list(items)
    if len(work) <= 1 or jobs <= 1:
        return [func(item) for item in work]
    pool = ThreadPoolExecutor(min(jobs, len(work)), thread_name_prefix=name)
    try:
        results = list(pool.map(func, work))
    except BaseException:  # an interrupt (Ctrl-C) or a bug: what has not started never starts
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results


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

    candidates = [pair for found in parallel(arches, [v for v in listing.list_dirs() if _safe(v)], jobs)
                  for pair in found]

    def live(pair: tuple[str, str]) -> bool:
        try:
            return base.child(*pair).size(TIMESTAMP) is not None
        except RepoToolError:
            return True  # cannot tell: keep it, so that loading it reports the problem

    present = parallel(live, candidates, jobs)
    return [pair for pair, keep in zip(candidates, present) if keep]


def _safe(name: str) -> bool:
    try:
        check_safe_name(name, "name")
    except RepoToolError:
        return False
    return True


def config_refs(config: RepoConfig, pairs: list[tuple[str, str]], jobs: int = JOBS,
                with_targets: bool = False) -> list[RepoRef | Unlisted]:
    """The repositories of ``config`` to read: ``pairs``, else ``variants:``, else discovered
    (``with_targets``: each with the config's targets storage).

    A base that cannot be listed (HTTP) without pairs or ``variants:`` is a ConfigError.  A listing
    that fails, or finds nothing, is returned as an :class:`Unlisted`, so that the other configured
    repositories are still read."""
    root = config_trusted_root(config).data
    base = open_storage(config.metadata_url, config.base_dir, config.aws)
    targets = config.targets() if with_targets else None
    chosen = pairs or config.variants
    if not chosen:
        _listable(base, config)
        whole = RepoRef(config.name, None, None, base, root, str(config.root), targets)
        try:
            chosen = discover(base, jobs)
        except RepoToolError as exc:
            return [Unlisted(whole, f"cannot discover repositories: {exc.message}")]
        if not chosen:
            return [Unlisted(whole, f"no repositories found below {base.url} (no VARIANT/ARCH/{TIMESTAMP}); "
                                    "check metadata_url or list variants: in the config")]
    refs: list[RepoRef | Unlisted] = []
    for variant, arch in chosen:
        check_safe_name(variant, "variant")
        check_safe_name(arch, "arch")
        refs.append(RepoRef(config.name, variant, arch, base.child(variant, arch), root, str(config.root), targets))
    return refs
