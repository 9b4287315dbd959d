"""Bottlerocket's ``Release.toml``: the release version and its migrations (SPEC §5.7)."""

from __future__ import annotations

from dataclasses import dataclass

from repo_tool.core.manifest import MigrationKey, parse_migrations
from repo_tool.core.semver import Version
from repo_tool.core.toml import load_toml
from repo_tool.errors import ConfigError, VersionError


@dataclass(frozen=True)
class Release:
    version: Version
    migrations: dict[MigrationKey, list[str]]


def parse_release(text: str) -> Release:
    """Parse ``Release.toml`` as update_metadata's ``Release`` does (unknown keys ignored)."""
    data = load_toml(text, ConfigError)
    for key in ("version", "migrations"):
        if key not in data:
            raise ConfigError(f"missing key {key!r}")
    if not isinstance(data["version"], str):
        raise ConfigError(f"version: expected a string, found {data['version']!r}")
    try:
        version = Version.parse(data["version"])
    except VersionError as exc:
        raise exc.within("version") from None
    return Release(version, parse_migrations(data["migrations"], "migrations", ConfigError))
