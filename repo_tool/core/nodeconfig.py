"""A node's inputs as updog reads them (SPEC §9.1): ``/etc/updog.toml``, ``os-release`` and its arch name.

Pure parsing: text in, values out; the caller reads the files (or asks the platform) and names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repo_tool.core.readiness import check_seed
from repo_tool.core.semver import Version
from repo_tool.core.toml import load_toml
from repo_tool.errors import ConfigError, VersionError

_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def bottlerocket_arch(machine: str) -> str:
    """The Bottlerocket arch of a machine name (``platform.machine()``, or an ``--arch`` option).

    ``amd64`` and ``arm64``, in any case (Windows says ``AMD64``, macOS ``arm64``), become ``x86_64``
    and ``aarch64``; any other name is returned as given.  updog itself uses the arch it was compiled
    for (Rust's ``std::env::consts::ARCH``), so on a node the answer is always ``x86_64`` or ``aarch64``:
    the aliases only matter when the tool runs off a Bottlerocket host."""
    return _ARCH_ALIASES.get(machine.lower(), machine)


@dataclass(frozen=True)
class UpdogConfig:
    metadata_base_url: str
    targets_base_url: str
    seed: int
    version_lock: str
    ignore_waves: bool
    https_proxy: str | None = None
    no_proxy: tuple[str, ...] = ()

    def proxy_environment(self) -> dict[str, str]:
        """What updog exports: ``HTTPS_PROXY`` (scheme defaults to http://) and, only with it, ``NO_PROXY``."""
        if not self.https_proxy:
            return {}
        proxy = self.https_proxy if "://" in self.https_proxy else f"http://{self.https_proxy}"
        env = {"HTTPS_PROXY": proxy}
        if self.no_proxy:
            env["NO_PROXY"] = ",".join(self.no_proxy)
        return env


def parse_updog_toml(text: str) -> UpdogConfig:
    """``updog.toml``; every problem is a one-line :class:`ConfigError` naming the field."""
    data = load_toml(text, ConfigError)  # unknown fields are ignored, as updog's serde Config does

    def required(name: str, kind: type, what: str) -> Any:
        if name not in data:
            raise ConfigError(f"missing field {name!r}")
        value = data[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"field {name!r} must be {what}")
        return value

    seed = required("seed", int, "an integer")
    try:
        check_seed(seed)
    except ConfigError as exc:
        raise ConfigError(f"field 'seed': {exc.message}") from None
    proxy = data.get("https_proxy")
    if proxy is not None and not isinstance(proxy, str):
        raise ConfigError("field 'https_proxy' must be a string")
    no_proxy = data.get("no_proxy", [])
    if not isinstance(no_proxy, list) or not all(isinstance(x, str) for x in no_proxy):
        raise ConfigError("field 'no_proxy' must be an array of strings")
    return UpdogConfig(
        metadata_base_url=required("metadata_base_url", str, "a string"),
        targets_base_url=required("targets_base_url", str, "a string"),
        seed=seed,
        version_lock=required("version_lock", str, "a string"),
        ignore_waves=required("ignore_waves", bool, "true or false"),
        https_proxy=proxy or None,
        no_proxy=tuple(no_proxy),
    )


@dataclass(frozen=True)
class OsRelease:
    version_id: Version
    variant_id: str
    pretty_name: str | None
    build_id: str | None


def parse_os_release(text: str) -> OsRelease:
    """``KEY=value`` lines; ``#`` lines skipped; one pair of surrounding double quotes stripped."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key:
            raise ConfigError(f"line {number}: expected KEY=value")
        if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        values[key] = value
    for key in ("VERSION_ID", "VARIANT_ID"):
        if not values.get(key):
            raise ConfigError(f"missing {key}")
    try:
        version = Version.parse(values["VERSION_ID"])
    except VersionError as exc:
        raise ConfigError(f"VERSION_ID: {exc.message}") from None
    return OsRelease(version, values["VARIANT_ID"], values.get("PRETTY_NAME"), values.get("BUILD_ID"))
