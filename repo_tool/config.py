"""Publisher configuration: ``repo-tool.yaml``, or pubsys's ``Infra.toml`` read unchanged.

``repo-tool.yaml``::

    repos:
      dev:
        metadata_url: file://repo/metadata     # <variant>/<arch>/ is appended
        targets_url: file://repo/targets       # shared by every variant/arch
        root: root.json                        # trusted root.json
        signers:                               # key sources per role; a list each, so thresholds > 1 work
          root: [keys/root.pem]
          targets: [keys/targets.pem]
          snapshot: [keys/snapshot.pem]
          timestamp: [keys/timestamp.pem]
        expiration: {snapshot: 2 weeks, targets: 2 weeks, timestamp: 1 week}   # or a pubsys TOML path
        wave_policy: default                   # a shipped policy name or a path
        profile: release                       # optional AWS profile (S3 storage, KMS keys)
        endpoint_url: https://s3.example.net   # optional S3 endpoint (S3-compatible stores)
        variants: [aws-k8s-1.28/x86_64, aws-k8s-1.28/aarch64]   # optional: the repos check-expirations checks

``variants`` lists the ``<variant>/<arch>`` repositories under ``metadata_url``
(each part a safe name); without it, ``check-expirations`` discovers them by
listing local directories or the S3 prefix (an ``http(s)://`` base cannot be
listed, so it needs ``variants`` or ``--variant/--arch``).  Publishing commands
ignore it: they always name their variant and arch.

``signers`` may also be one list used for every role (pubsys style).  Relative
paths are relative to the config file.  In ``Infra.toml`` each ``[repo.NAME]``
gives ``metadata_base_url``, ``targets_url``, ``root_role_url`` (+ optional
``root_role_sha512``) and ``signing_keys`` (``file``/``kms``/``ssm``/``env``).

This module reads files and checks their shape; it must not load keys or import signing: a
configuration keeps each key source as the string the file gives (the auditor reads configurations
too).  :func:`repo_tool.signing.signers.role_signers` turns them into signers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from repo_tool.aws import AwsSettings
from repo_tool.core.instant import (
    NANOS_PER_SECOND,
    format_duration,
    format_instant,
    format_whole_seconds,
    parse_instant,
    parse_offset,
)
from repo_tool.core.toml import load_toml
from repo_tool.core.yamlfile import load_yaml
from repo_tool.errors import ConfigError, RepoToolError, UsageError
from repo_tool.localfs import user_path
from repo_tool.storage import open_storage
from repo_tool.storage.base import Storage
from repo_tool.trust.metadata import Expirations, check_safe_name
from repo_tool.trust.model import TOP_ROLES

# The wave policies shipped in repo_tool/policies/, by the name a config or a command line gives.
BUILTIN_POLICIES = {
    "default": "default-waves.toml",
    "accelerated": "accelerated-waves.toml",
    "slow-roll": "slow-roll.toml",
    "ohno": "ohno.toml",
}
DEFAULT_EXPIRATION_TEXT = {"snapshot": "2 weeks", "targets": "2 weeks", "timestamp": "1 week"}
_REPO_KEYS = {"metadata_url", "targets_url", "root", "signers", "expiration", "wave_policy", "profile", "endpoint_url",
              "variants"}


EXPIRING_ROLES = ("targets", "snapshot", "timestamp")
"""The roles every publish re-signs, whose expiration a config sets (root's is set when it is signed)."""


@dataclass(frozen=True)
class Expiry:
    """When a role's new file expires: ``ns`` after the start (an offset, ``2 weeks``), or, given
    as an RFC 3339 time on the command line, at the instant ``ns`` (``fixed``)."""

    ns: int
    fixed: bool = False

    def at(self, start: int) -> int:
        return self.ns if self.fixed else start + self.ns


@dataclass(eq=False)  # compared (and hashed) by identity: signing caches the keys it loads per config
class RepoConfig:
    name: str
    source: Path
    base_dir: Path
    metadata_url: str
    targets_url: str
    root: Path
    signers: dict[str, list[str]]
    expirations: Expirations
    wave_policy: str = "default"
    root_sha512: str | None = None
    aws: AwsSettings = field(default_factory=AwsSettings)
    variants: list[tuple[str, str]] = field(default_factory=list)  # (variant, arch); [] = not listed
    expires_given: dict[str, Expiry] = field(default_factory=dict)  # role -> the command line's, over the file's

    def expirations_from(self, start: int, now: int | None = None, start_from: str | None = None) -> Expirations:
        """The offsets from ``start`` each role's new file expires at: the file's (or the default),
        with those given on the command line (``--targets-expires`` ...) put over them.  Given ``now``,
        one already past (as written: whole seconds) is an input error naming its source: the option,
        or the start it counts from (``start_from``, e.g. ``--release-start-time 2020-01-01T00:00:00Z``)."""
        offsets = {role: getattr(self.expirations, role) for role in EXPIRING_ROLES}
        for role, given in self.expires_given.items():
            offsets[role] = given.at(start) - start
        for role in EXPIRING_ROLES if now is not None else ():
            expires = start + offsets[role]
            if expires - expires % NANOS_PER_SECOND > now:
                continue
            option = self.expires_given.get(role)
            if option is not None and option.fixed:
                raise UsageError(f"--{role}-expires {format_instant(option.ns)} is in the past")
            source = f"--{role}-expires" if option is not None else "the config's expiration"
            raise UsageError(f"{role} would expire {format_whole_seconds(expires)} ({source}: "
                             f"{format_duration(offsets[role])} from {start_from or 'now'}): pass --{role}-expires "
                             "or a later start")
        return Expirations(**offsets)

    def metadata_base(self) -> Storage:
        """The storage under ``metadata_url``: one ``VARIANT/ARCH/`` repository per directory."""
        return open_storage(self.metadata_url, self.base_dir, self.aws)

    def metadata(self, variant: str, arch: str) -> Storage:
        """The metadata storage of one variant/arch repository (names not checked here)."""
        return self.metadata_base().child(variant, arch)

    def targets(self) -> Storage:
        """The targets storage every variant/arch repository shares."""
        return open_storage(self.targets_url, self.base_dir, self.aws)

    def read_root(self) -> bytes:
        try:
            raw = self.root.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{self.source}: repo {self.name}: cannot read trusted root {self.root}: "
                              f"{exc.strerror}") from None
        if self.root_sha512 and hashlib.sha512(raw).hexdigest() != self.root_sha512.lower():
            raise ConfigError(f"{self.source}: repo {self.name}: {self.root} does not match root_role_sha512")
        return raw


def table(value: object, where: str, known: set[str], what: str = "key") -> dict[str, Any]:
    """``value`` as a mapping whose keys are all in ``known``; else a one-line error at ``where``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = sorted(str(k) for k in set(value) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown {what} {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return value


def parse_expiry(text: str, where: str, instants: bool = False) -> Expiry:
    """One expiration: the offset grammar of SPEC §6.2 (``[in] N minutes|hours|days|weeks``),
    counted from the start, as the config's ``expiration`` takes it; with ``instants`` (the command
    line, as tuftool's ``--*-expires``) also an RFC 3339 time (it has ``HH:MM``, an offset never does).
    Errors name ``where``."""
    try:
        if instants and ":" in text:
            return Expiry(parse_instant(text.strip()), fixed=True)
        return Expiry(parse_offset(text))
    except RepoToolError as exc:
        also = " (or an RFC 3339 time such as 2030-01-01T00:00:00Z)" if instants and ":" not in text else ""
        raise exc.reworded(f"{where}: {exc.message}{also}") from None


def parse_expirations(data: object, where: str) -> Expirations:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table with snapshot/targets/timestamp expirations")
    names = {"snapshot": "snapshot_expiration", "targets": "targets_expiration", "timestamp": "timestamp_expiration"}
    pubsys_style = any(k.endswith("_expiration") for k in data)
    values: dict[str, int] = {}
    for role, pubsys_key in names.items():
        key = pubsys_key if pubsys_style else role
        if key not in data:
            raise ConfigError(f"{where}: missing {key}")
        text = data[key]
        if not isinstance(text, str):
            raise ConfigError(f"{where}: {key}: expected a string such as '2 weeks'")
        values[role] = parse_expiry(text, f"{where}: {key}").ns
    allowed = set(names.values()) if pubsys_style else set(names)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    return Expirations(**values)


def load_expiration_policy(path: Path) -> Expirations:
    """pubsys's expiration-policy TOML (``snapshot_expiration`` ...), read unchanged."""
    text = _read_text(path)
    try:
        data = load_toml(text, ConfigError) if path.suffix == ".toml" else load_yaml(text, ConfigError)
    except ConfigError as exc:
        raise exc.within(str(path)) from None
    return parse_expirations(data, str(path))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


DEFAULT_EXPIRATIONS = parse_expirations(DEFAULT_EXPIRATION_TEXT, "default expiration")


def _path_from_url(value: str, base: Path, where: str) -> Path:
    parsed = urlparse(value)
    if parsed.scheme == "file":
        raw = unquote(parsed.netloc + parsed.path) if parsed.netloc not in ("", "localhost") else unquote(parsed.path)
    elif parsed.scheme in ("", ):
        raw = value
    else:
        raise ConfigError(f"{where}: {value}: only file:// URLs or paths can be read here")
    path = user_path(raw, where)
    return path if path.is_absolute() else base / path


def _signer_lists(value: object, where: str) -> dict[str, list[str]]:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: key sources must be strings")
        return {role: list(value) for role in TOP_ROLES}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a list of key sources or a table of role → list")
    result: dict[str, list[str]] = {}
    for role, given in value.items():
        if role not in TOP_ROLES:
            raise ConfigError(f"{where}: unknown role {role!r} (roles: {', '.join(TOP_ROLES)})")
        sources = [given] if isinstance(given, str) else given
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise ConfigError(f"{where}.{role}: expected a list of key sources")
        result[role] = list(sources)
    return result


def parse_variant_arch(text: str, what: str) -> tuple[str, str]:
    """``"aws-k8s-1.28/x86_64"`` → (variant, arch), each a safe name; else a one-line ConfigError."""
    variant, slash, arch = text.partition("/")
    if not slash:
        raise ConfigError(f"{what}: {text!r}: expected VARIANT/ARCH such as aws-k8s-1.28/x86_64")
    try:
        check_safe_name(variant, "variant")
        check_safe_name(arch, "arch")
    except RepoToolError as exc:
        raise ConfigError(f"{what}: {exc.message}") from None
    return variant, arch


def _variant_list(value: object, where: str) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of VARIANT/ARCH strings")
    result: list[tuple[str, str]] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"{where}[{i}]: expected a VARIANT/ARCH string")
        pair = parse_variant_arch(item, f"{where}[{i}]")
        if pair in result:
            raise ConfigError(f"{where}[{i}]: {item} is listed twice")
        result.append(pair)
    return result


def _load_yaml_repo(name: str, data: object, source: Path) -> RepoConfig:
    where = f"{source}: repos.{name}"
    data = table(data, where, _REPO_KEYS)
    for key in ("metadata_url", "targets_url", "root"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{where}: {key} is required (a string)")
    base = source.parent
    expiration = data.get("expiration")
    if expiration is None:
        expirations = DEFAULT_EXPIRATIONS
    elif isinstance(expiration, str):
        expirations = load_expiration_policy(_path_from_url(expiration, base, f"{where}.expiration"))
    else:
        expirations = parse_expirations(expiration, f"{where}.expiration")
    policy = data.get("wave_policy", "default")
    if not isinstance(policy, str):
        raise ConfigError(f"{where}.wave_policy: expected a policy name or path")
    if policy not in BUILTIN_POLICIES:
        policy = str(_path_from_url(policy, base, f"{where}.wave_policy"))
    for key in ("profile", "endpoint_url"):
        if not isinstance(data.get(key, ""), str):
            raise ConfigError(f"{where}.{key}: expected a string")
    return RepoConfig(
        name=name,
        source=source,
        base_dir=base,
        metadata_url=data["metadata_url"],
        targets_url=data["targets_url"],
        root=_path_from_url(data["root"], base, f"{where}.root"),
        signers=_signer_lists(data.get("signers", {}), f"{where}.signers"),
        expirations=expirations,
        wave_policy=policy,
        aws=AwsSettings(data.get("profile") or None, data.get("endpoint_url") or None),
        variants=_variant_list(data["variants"], f"{where}.variants") if "variants" in data else [],
    )


def _infra_signing_key(value: object, where: str) -> str:
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(f"{where}: expected one of file/kms/ssm/env")
    kind, body = next(iter(value.items()))
    if not isinstance(body, dict):
        raise ConfigError(f"{where}.{kind}: expected a table")
    if kind == "file" and isinstance(body.get("path"), str):
        return f"file:{body['path']}"
    if kind == "kms" and isinstance(body.get("key_id"), str):
        return f"awskms:{body['key_id']}"
    if kind == "env" and isinstance(body.get("var_name"), str):
        return f"envvar:{body['var_name']}"
    if kind == "ssm" and isinstance(body.get("parameter"), str):
        return f"ssm:{body['parameter']}"
    raise ConfigError(f"{where}: unsupported signing key {kind!r} or missing field")


def _load_infra_repo(name: str, data: object, source: Path) -> RepoConfig:
    where = f"{source}: repo.{name}"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table")
    for key in ("metadata_base_url", "targets_url", "root_role_url", "signing_keys"):
        if key not in data:
            raise ConfigError(f"{where}: {key} is required to publish with this repo")
    base = source.parent
    key = _infra_signing_key(data["signing_keys"], f"{where}.signing_keys")
    sha = data.get("root_role_sha512")
    return RepoConfig(
        name=name,
        source=source,
        base_dir=base,
        metadata_url=str(data["metadata_base_url"]),
        targets_url=str(data["targets_url"]),
        root=_path_from_url(str(data["root_role_url"]), base, f"{where}.root_role_url"),
        signers={role: [key] for role in TOP_ROLES},
        expirations=DEFAULT_EXPIRATIONS,
        root_sha512=sha if isinstance(sha, str) else None,
    )


def _repo_tables(path: Path) -> tuple[dict[str, Any], Callable[[str, object, Path], RepoConfig]]:
    """The repository entries of a config file, and the loader for one of them."""
    text = _read_text(path)
    loader: Callable[[str, object, Path], RepoConfig]
    if path.suffix == ".toml":
        try:
            data = load_toml(text, ConfigError)
        except ConfigError as exc:
            raise exc.within(str(path)) from None
        repos, loader, section = data.get("repo"), _load_infra_repo, "[repo.NAME]"
    else:
        try:
            data = load_yaml(text, ConfigError)
        except ConfigError as exc:
            raise exc.within(str(path)) from None
        data = table(data, str(path), {"repos"}, "top-level key")
        repos, loader, section = data.get("repos"), _load_yaml_repo, "repos"
    if not isinstance(repos, dict) or not repos:
        raise ConfigError(f"{path}: no repositories defined ({section})")
    return repos, loader


def repo_names(path: Path) -> list[str]:
    """The names of the repositories a config file defines, in file order."""
    return [str(name) for name in _repo_tables(path)[0]]


def load_config(path: Path, repo: str | None, aws: AwsSettings | None = None) -> RepoConfig:
    """Load repo ``repo`` (or the only one) from a YAML config or a pubsys Infra.toml; AWS calls
    (S3 storage, KMS keys) use ``aws``."""
    source = path.resolve()
    repos, loader = _repo_tables(path)
    if repo is None:
        if len(repos) != 1:
            raise ConfigError(f"{path}: several repos defined ({', '.join(repos)}); choose one with --repo")
        repo = next(iter(repos))
    if repo not in repos:
        raise ConfigError(f"{path}: no repo named {repo!r} (defined: {', '.join(repos)})")
    config = loader(repo, repos[repo], source)
    if aws is not None:  # the command line wins over the file
        config.aws = AwsSettings(aws.profile or config.aws.profile, aws.endpoint_url or config.aws.endpoint_url)
    return config


@dataclass(frozen=True)
class NewEntry:
    """One repository of a new ``repo-tool.yaml``: ``root`` and the ``signers`` sources as the file
    gives them (relative to it); ``aws``'s endpoint and profile are written only when set."""

    name: str
    metadata_url: str
    targets_url: str
    root: str
    signers: dict[str, list[str]]
    wave_policy: str = "default"
    aws: AwsSettings = field(default_factory=AwsSettings)


def config_text(entry: NewEntry) -> str:
    """A ``repo-tool.yaml`` defining ``entry``, as quickstart writes it: a commented header, then the
    entry written by ``yaml.safe_dump`` (so any value, quotes, colons and `` #`` included, reads back as given)."""
    repo: dict[str, Any] = {
        "metadata_url": entry.metadata_url,
        "targets_url": entry.targets_url,
        "root": entry.root,
        "signers": {role: list(entry.signers.get(role, [])) for role in TOP_ROLES},
        "expiration": dict(DEFAULT_EXPIRATION_TEXT),
        "wave_policy": entry.wave_policy,
    }
    header = [
        "# repo-tool configuration: one entry per repository family.",
        "# Metadata for variant V and arch A lives under <metadata_url>/V/A/; targets are shared.",
        "# root: the trusted root.json (keep a copy offline).",
        "# signers: key sources per role: a path, file:PATH, envvar:NAME, awskms:KEY, aws-kms://[PROFILE]/KEY,",
        "# aws-ssm://[PROFILE]/PARAMETER, hsm:[KEYID][?label=TOKEN].",
    ]
    if entry.aws.endpoint_url:
        repo["endpoint_url"] = entry.aws.endpoint_url
        header.append("# endpoint_url: the S3 endpoint (drop it for AWS itself).")
    if entry.aws.profile:
        repo["profile"] = entry.aws.profile
        header.append("# profile: the AWS profile for S3 and KMS.")
    # Flow style for the innermost lists and maps (signers' lists, expiration), block style above them.
    body = yaml.safe_dump({"repos": {entry.name: repo}}, sort_keys=False, default_flow_style=None,
                          allow_unicode=True, width=1 << 16)
    return "\n".join(header) + "\n" + body
