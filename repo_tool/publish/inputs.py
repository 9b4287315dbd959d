"""The publisher's input files, read from disk with one-line errors: wave policies (a shipped name or
a path), ``Release.toml``, ``manifest.json`` (created, read, validated and written back), and any
input's bytes or text.

Each error names the file; parsing is the core's (:mod:`repo_tool.core.waves`, ``core.release``,
``core.manifest``).  This module must not touch a repository or load keys: it reads what a
command is given.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from repo_tool.config import BUILTIN_POLICIES
from repo_tool.core.chain import breaks as chain_breaks
from repo_tool.core.manifest import EMPTY_MANIFEST_BYTES, Manifest
from repo_tool.core.release import Release, parse_release
from repo_tool.core.waves import WavePolicy, parse_policy
from repo_tool.errors import ConfigError, RepoToolError, UsageError, VerificationError
from repo_tool.localfs import write_atomic


def read_bytes(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of ``path``; a :class:`ConfigError` saying which ``what`` could not be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {os.fspath(path)}: {exc.strerror or exc}") from None


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """The UTF-8 text of ``path`` (see :func:`read_bytes`)."""
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)}: not valid UTF-8 (byte {exc.start})") from None


def load_manifest(path: str) -> Manifest:
    """``manifest.json`` at ``path``, parsed; errors name the file."""
    data = read_bytes(path, "manifest")
    try:
        return Manifest.from_bytes(data)
    except RepoToolError as exc:
        raise exc.within(path) from None


def write_manifest(path: str, manifest: Manifest) -> None:
    """Replace the file atomically with the canonical bytes (each edit checks what upstream checks)."""
    try:
        write_atomic(path, manifest.to_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot write manifest {path}: {exc.strerror or exc}") from None


def init_manifest(path: str, force: bool) -> None:
    """An empty ``manifest.json`` at ``path``; an existing file is replaced only with ``force``."""
    if os.path.exists(path) and not force:
        raise UsageError(f"{path} already exists; pass --force to replace it with an empty manifest")
    try:
        write_atomic(path, EMPTY_MANIFEST_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot write manifest {path}: {exc.strerror or exc}") from None


def validate_manifest_file(path: str) -> Manifest:
    """The manifest at ``path`` if it parses, its waves and migrations are in order and every two
    versions of a variant/arch are joined by the migration chain nodes walk; else a
    :class:`VerificationError` naming the file and the first problem (and how many more chain breaks)."""
    data = read_bytes(path, "manifest")
    try:
        doc = Manifest.from_bytes(data)
        doc.validate()
    except RepoToolError as exc:
        raise VerificationError(f"{path}: {exc}") from None
    broken = chain_breaks(doc)
    if broken:
        more = f"; and {len(broken) - 1} more pair(s)" if len(broken) > 1 else ""
        raise VerificationError(f"{path}: {broken[0].describe()}{more}")
    return doc


def load_policy(spec: str) -> tuple[WavePolicy, str]:
    """A policy file path, or the name of a shipped policy (default, accelerated, slow-roll, ohno)."""
    if spec in BUILTIN_POLICIES and not Path(spec).exists():
        resource = importlib.resources.files("repo_tool.policies").joinpath(BUILTIN_POLICIES[spec])
        text, label = resource.read_text(encoding="utf-8"), f"{spec} ({BUILTIN_POLICIES[spec]})"
    else:
        text, label = read_text(spec, "wave policy"), spec
    try:
        return parse_policy(text, spec), label
    except RepoToolError as exc:
        raise exc.within(spec) from None


def load_release(path: str) -> Release:
    """``Release.toml`` at ``path``, parsed; errors name the file."""
    text = read_text(path, "release file")
    try:
        return parse_release(text)
    except RepoToolError as exc:
        raise exc.within(path) from None
