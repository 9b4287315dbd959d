"""The trusted root an audit anchors on, read and checked before anything is audited.

A root that cannot be read, parsed or does not meet its own threshold is the command line's fault
(exit 2, one line naming the flag and the file), not a finding about the repository.  Must not:
read the repository.
"""

from __future__ import annotations

import os

from repo_tool.audit.options import TrustedRoot
from repo_tool.config import RepoConfig
from repo_tool.errors import RepoToolError, UsageError, unnamed
from repo_tool.trust.verifier import verify_trusted_root

ROOT_FLAG = "--root"


def trusted_root(raw: bytes, name: str, given_as: str = ROOT_FLAG) -> TrustedRoot:
    """``raw`` (the file ``name``, given as ``given_as``: a flag, or where a config names it) as the
    trusted root: it parses as a root and is signed by a threshold of its own root keys."""
    try:
        verify_trusted_root(raw, name)
    except RepoToolError as exc:
        raise UsageError(f"{given_as} {name}: not a trusted root: {unnamed(exc.message, name)}") from None
    return TrustedRoot(raw, name)


def read_trusted_root(path: str | os.PathLike[str], given_as: str = ROOT_FLAG) -> TrustedRoot:
    """The trusted root in the file ``path`` (see :func:`trusted_root`)."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise UsageError(f"{given_as} {name}: cannot read: {exc.strerror or exc}") from None
    return trusted_root(raw, name, given_as)


def config_trusted_root(config: RepoConfig) -> TrustedRoot:
    """The trusted root a configured repository names (``root:``, or Infra.toml's ``root_role_url``,
    checked against its ``root_role_sha512``)."""
    return trusted_root(config.read_root(), str(config.root), f"{config.source}: repo {config.name}: root")
