"""Helpers shared by the CLI commands: the clock, file reading and writing, output."""

from __future__ import annotations

import importlib.resources
import os
import time
from pathlib import Path
from typing import Any

import click

from repo_tool.core.instant import parse_time_arg
from repo_tool.core.manifest import Manifest, dumps_pretty
from repo_tool.core.release import Release, parse_release
from repo_tool.core.semver import Version
from repo_tool.core.waves import WavePolicy, parse_policy
from repo_tool.errors import ConfigError, RepoToolError, UsageError
from repo_tool.localfs import write_atomic

BUILTIN_POLICIES = {
    "default": "default-waves.toml",
    "accelerated": "accelerated-waves.toml",
    "slow-roll": "slow-roll.toml",
    "ohno": "ohno.toml",
}


def now_ns() -> int:
    """The one clock read of a command: every 'now' it needs derives from this value."""
    return time.time_ns()


def read_bytes(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {os.fspath(path)}: {exc.strerror or exc}") from None


def read_text(path: str | os.PathLike[str], what: str) -> str:
    data = read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)}: not valid UTF-8 (byte {exc.start})") from None


def load_manifest(path: str) -> Manifest:
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
    text = read_text(path, "release file")
    try:
        return parse_release(text)
    except RepoToolError as exc:
        raise exc.within(path) from None


def parse_version_option(text: str, flag: str) -> Version:
    try:
        return Version.parse(text)
    except RepoToolError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def parse_time_option(text: str, now: int, flag: str) -> int:
    try:
        return parse_time_arg(text, now)
    except RepoToolError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def echo_json(obj: Any) -> None:
    """CLI JSON: the manifest layout plus one newline."""
    click.echo(dumps_pretty(obj))


def warn(message: str) -> None:
    click.echo(f"repo-tool: warning: {message}", err=True)
