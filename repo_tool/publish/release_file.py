"""``RELEASE.yaml``, the input of ``publish-release``: one version for many variant/arch repositories.

::

    version: 1.2.0
    config: repo-tool.yaml          # optional, relative to this file
    repo: prod                      # optional
    release_config: Release.toml    # optional
    wave_policy: default            # optional
    release_start_time: in 2 hours  # optional
    repos:
      - {variant: aws-k8s-1.28, arch: x86_64, boot_image: ..., root_image: ..., hash_image: ...,
         link_targets: [...], copy_targets: [...]}

:func:`load_release_file` reads the file; :func:`parse_release_file` is pure (text in, a typed
:class:`ReleaseFile` out; relative paths are joined to a base directory the caller gives, ``~`` is
expanded).  Neither must read the files the release names, load the configuration or
touch a repository: the command does that with what this returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from repo_tool.config import table
from repo_tool.core.yamlfile import load_yaml
from repo_tool.errors import ConfigError
from repo_tool.localfs import user_path
from repo_tool.publish.inputs import read_text

_RELEASE_KEYS = {"config", "repo", "version", "release_config", "wave_policy", "release_start_time", "repos"}
_ENTRY_KEYS = {"variant", "arch", "boot_image", "root_image", "hash_image", "link_targets", "copy_targets"}


@dataclass(frozen=True)
class ReleaseEntry:
    """One variant/arch repository to publish to, and its images (paths made absolute)."""

    variant: str
    arch: str
    boot_image: Path
    root_image: Path
    hash_image: Path
    link_targets: tuple[Path, ...] = ()
    copy_targets: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ReleaseFile:
    """A parsed ``RELEASE.yaml``; every path in it is absolute."""

    path: Path  # the file, as named (for messages)
    version: str  # as written; the command parses it (its errors name "<path>: version")
    config: Path  # --config if given, else the file's config
    repo: str | None
    release_config: Path | None
    wave_policy: str | None
    release_start_time: str | None
    repos: tuple[ReleaseEntry, ...]


def load_release_file(path: Path, config: Path | None = None, default_config: Path | None = None) -> ReleaseFile:
    """Read and parse the release file at ``path`` (relative paths in it are relative to its
    directory); ``config`` (``--config``) replaces the file's, ``default_config`` is used if it has none."""
    return parse_release_file(read_text(path, "release file"), path, path.resolve().parent, config, default_config)


def parse_release_file(text: str, path: Path, base: Path, config: Path | None = None,
                       default_config: Path | None = None) -> ReleaseFile:
    """Parse ``text``, the contents of ``path``; relative paths in it are relative to ``base``
    (the directory of the resolved file).  ``config`` (``--config``) replaces the file's.  Each error
    is a one-line :class:`ConfigError` naming the file and the field."""
    try:
        data = table(load_yaml(text, ConfigError), str(path), _RELEASE_KEYS)
    except ConfigError as exc:
        raise exc.within(str(path)) from None

    def rel(value: object, where: str) -> Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: {where}: expected a path")
        return _join(base, value)

    if config is None:
        own = data.get("config")
        config = rel(own, "config (or pass --config)") if own is not None or default_config is None else default_config
    if "version" not in data:
        raise ConfigError(f"{path}: version is required")
    strings = {}
    for key in ("repo", "wave_policy", "release_start_time"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: {key}: expected a string")
        strings[key] = value
    return ReleaseFile(
        path=path,
        version=str(data["version"]),
        config=config,
        repo=strings["repo"],
        release_config=rel(data["release_config"], "release_config") if data.get("release_config") else None,
        wave_policy=strings["wave_policy"],
        release_start_time=strings["release_start_time"],
        repos=_entries(data.get("repos"), path, rel),
    )


def _join(base: Path, value: str) -> Path:
    path = user_path(value)
    return path if path.is_absolute() else base / path


def _entries(entries: object, path: Path, rel: Callable[[object, str], Path]) -> tuple[ReleaseEntry, ...]:
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: repos: expected a non-empty list")
    result: list[ReleaseEntry] = []
    seen: set[tuple[str, str]] = set()
    for i, given in enumerate(entries):
        where = f"repos[{i}]"
        entry = table(given, f"{path}: {where}", _ENTRY_KEYS)
        for key in ("variant", "arch"):
            if not isinstance(entry.get(key), str):
                raise ConfigError(f"{path}: {where}.{key}: required")
        pair = (entry["variant"], entry["arch"])
        if pair in seen:
            raise ConfigError(f"{path}: {where}: {pair[0]}/{pair[1]} is listed twice")
        seen.add(pair)
        extra: dict[str, tuple[Path, ...]] = {}
        for key in ("link_targets", "copy_targets"):
            value = entry.get(key, [])
            if not isinstance(value, list):
                raise ConfigError(f"{path}: {where}.{key}: expected a list of paths")
            extra[key] = tuple(rel(v, f"{where}.{key}") for v in value)
        result.append(ReleaseEntry(
            entry["variant"], entry["arch"],
            rel(entry.get("boot_image"), f"{where}.boot_image"),
            rel(entry.get("root_image"), f"{where}.root_image"),
            rel(entry.get("hash_image"), f"{where}.hash_image"),
            extra["link_targets"], extra["copy_targets"],
        ))
    return tuple(result)
