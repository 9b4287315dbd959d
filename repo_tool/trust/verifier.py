"""The TUF client's public face: load a repository, look targets up, fetch a small target verified.

One client used by the publisher (verified load of the live repo), the node, the tuf-client and
the auditor.  It is four modules behind this one:

* :mod:`~repo_tool.trust.trusted` — the trusted set: each verification step, pure (bytes in,
  verified role files out, ``now`` passed in), and the one root-chain walk (:func:`walk_roots`);
* :mod:`~repo_tool.trust.policy` — tough (updog) and a standard TUF client as two policy objects;
* :mod:`~repo_tool.trust.lookup` — the verified :class:`Repo`, and the one target lookup through
  delegations (:func:`find_target`, :func:`object_name`: over role files, verified or not);
* :mod:`~repo_tool.trust.loader` — the shell: fetch from a ``Source``, keep in ``Store`` s
  (:func:`open_repo`, :func:`load_repo`).

This module adds only the target fetches (:func:`stream_target`, checked as the chunks pass, for
images; :func:`fetch_target` takes the target, the policy and the
repository's consistent flag, not a ``Repo``: the auditor also fetches over files a node refused);
it reads no clock and opens no file but the one
:func:`stored_copy` is asked about.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

from repo_tool.core.checked import checked
from repo_tool.core.manifest import MANIFEST_NAME, Manifest
from repo_tool.core.reader import StreamReader
from repo_tool.errors import ManifestError, VerificationError
from repo_tool.trust.loader import LoadKeywords, LoadOptions, load_repo, open_repo
from repo_tool.trust.lookup import Repo, Source, Store, Target, find_target, object_name
from repo_tool.trust.model import Limits, TargetError
from repo_tool.trust.policy import TOUGH, TOUGH_STRICT_WALK, TUF, Naming, Policy, resolve_name
from repo_tool.trust.trusted import (
    TIMESTAMP,
    ExpiredError,
    RepoMissingError,
    RollbackError,
    RootFiles,
    RootWalk,
    WalkBounds,
    role_file_name,
    verify_next_root,
    verify_trusted_root,
    walk_roots,
)

__all__ = [
    "TIMESTAMP",
    "TOUGH",
    "TOUGH_STRICT_WALK",
    "TUF",
    "ExpiredError",
    "Limits",
    "LoadKeywords",
    "LoadOptions",
    "Naming",
    "Policy",
    "Repo",
    "RepoMissingError",
    "RollbackError",
    "RootFiles",
    "RootWalk",
    "Source",
    "Store",
    "Target",
    "TargetError",
    "WalkBounds",
    "fetch_target",
    "find_target",
    "load_repo",
    "object_name",
    "open_repo",
    "read_manifest",
    "read_target",
    "resolve_name",
    "role_file_name",
    "stored_copy",
    "stream_target",
    "verify_next_root",
    "verify_trusted_root",
    "walk_roots",
]


def read_target(repo: Repo, targets_store: Source, name: str) -> bytes | None:
    """Download a small target fully verified; None if it is not listed."""
    target = repo.find(name)
    return None if target is None else fetch_target(targets_store, target, repo.policy, repo.consistent)


def read_manifest(repo: Repo, targets_store: Source) -> Manifest | None:
    """The repository's ``manifest.json`` target, verified and parsed; None if it is not listed.  One
    that verified but does not parse is a published, broken file: a :class:`VerificationError`."""
    data = read_target(repo, targets_store, MANIFEST_NAME)
    if data is None:
        return None
    try:
        return Manifest.from_bytes(data)
    except ManifestError as exc:
        raise VerificationError(f"{MANIFEST_NAME}: {exc.message}") from None


def fetch_target(targets_store: Source, target: Target, policy: Policy, consistent: bool) -> bytes:
    """A (small) listed target's bytes, read whole and checked: its length and the listed hashes as
    ``policy`` checks them; ``consistent``: the repository's consistent snapshots (its object name)."""
    name = object_name(target, policy, consistent)
    data = targets_store.read(name, target.length)
    if data is None:
        raise TargetError(f"target {target.name}: {targets_store.describe(name)} not found")
    if len(data) != target.length:
        raise TargetError(f"target {target.name}: {targets_store.describe(name)} is {len(data)} bytes, "
                          f"{target.length} listed")
    policy.check_hashes(data, target.hashes, f"target {target.name}: {targets_store.describe(name)}")
    return data


def stream_target(repo: Repo, targets_store: StreamReader, target: Target) -> Generator[bytes, None, None]:
    """``target``'s bytes as they stream from ``targets_store``, checked as they pass (what ``mirror``
    copies, ``download`` saves and a re-root publishes): never more than the listed length, and a
    :class:`TargetError` after the last chunk if fewer came or the sha256 is not the listed one, so a
    writer that stores only after the last chunk never stores wrong bytes."""
    name = repo.object_name(target)
    chunks = targets_store.stream(name, target.length)
    if chunks is None:
        raise TargetError(f"target {target.name}: {targets_store.describe(name)} not found")
    return checked(chunks, target.length, target.sha256, f"target {target.name}: {targets_store.describe(name)}",
                   TargetError)


def stored_copy(path: Path, target: Target, policy: Policy) -> bytes | None:
    """The bytes of ``path`` if it already holds ``target`` (its length and the listed hashes, as
    ``policy`` checks them), else None: a verified copy need not be downloaded again."""
    try:
        with path.open("rb") as handle:
            data = handle.read(target.length + 1)
    except OSError:
        return None
    if len(data) != target.length:
        return None
    try:
        policy.check_hashes(data, target.hashes, str(path))
    except VerificationError:
        return None
    return data
