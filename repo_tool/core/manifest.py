"""``manifest.json``: model, codec and editing operations (SPEC §5).

Reading is as lenient as updog's serde model (unknown members ignored, relaxed
instants) and as strict where updog is strict (duplicate or non-integer wave
bounds, duplicate migration keys, strict semver).  Writing produces the bytes
``serde_json::to_string_pretty`` produces for Bottlerocket's
``update_metadata::Manifest``: fixed member order, 2-space indent, wave keys in
numeric order, migration keys in string order, no trailing newline.

Nothing here touches files or the clock: callers pass bytes in, get bytes out,
and pass the release start instant explicitly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from repo_tool.core.instant import format_instant, parse_instant, parse_u32
from repo_tool.core.jsontext import SURROGATE_ESCAPE, JSONTextError, reject_constant, strict_text
from repo_tool.core.semver import Version
from repo_tool.core.waves import WavePolicy, check_waves_ordered, policy_to_waves
from repo_tool.errors import ConfigError, InstantError, ManifestError, VersionError

MigrationKey = tuple[Version, Version]

_MIGRATION_KEY = re.compile(r"\((?P<from_ver>[^ ,]+),[ ]*(?P<to_ver>[^ ,]+)\)")
_MAX_JSON_DEPTH = 128
T = TypeVar("T")

MANIFEST_NAME = "manifest.json"
"""The target every node reads (updog's ``MANIFEST_FILE``): the one definition of the name."""


@dataclass
class Images:
    """Target names of the three partition images of an update."""

    boot: str
    root: str
    hash: str


@dataclass
class Update:
    """One entry of ``updates``: a release for one variant and arch."""

    variant: str
    arch: str
    version: Version
    max_version: Version
    waves: dict[int, int]  # seed bound -> instant (ns); written in key order
    images: Images

    def matches(self, variant: str, arch: str, version: Version) -> bool:
        return self.variant == variant and self.arch == arch and self.version == version

    @property
    def pulled(self) -> bool:
        """Above its ``max_version``: updog offers it to no host (SPEC §8)."""
        return self.version > self.max_version

    def to_json_obj(self) -> dict[str, Any]:
        """The serde layout of the update (also the JSON that updog prints)."""
        return {
            "variant": self.variant,
            "arch": self.arch,
            "version": str(self.version),
            "max_version": str(self.max_version),
            "waves": {str(k): format_instant(self.waves[k]) for k in sorted(self.waves)},
            "images": {"boot": self.images.boot, "root": self.images.root, "hash": self.images.hash},
        }


@dataclass
class Manifest:
    """The whole ``manifest.json``."""

    updates: list[Update] = field(default_factory=list)
    migrations: dict[MigrationKey, list[str]] = field(default_factory=dict)

    # --- codec ---------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Manifest:
        """Parse manifest JSON; raise :class:`ManifestError` naming the field at fault."""
        root = load_json_pairs(data, ManifestError)
        fields = _struct(root, "manifest", ("updates", "migrations"))
        updates_value = _require(fields, "updates", "manifest")
        if not isinstance(updates_value, list):
            raise ManifestError(f"updates: expected an array, found {_json_type(updates_value)}")
        updates = [_parse_update(item, f"updates[{i}]") for i, item in enumerate(updates_value)]
        migrations = parse_migrations(_require(fields, "migrations", "manifest"), "migrations", ManifestError)
        return cls(updates, migrations)

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "updates": [u.to_json_obj() for u in self.updates],
            "migrations": {
                text: list(names)
                for text, names in sorted((migration_key_text(k), v) for k, v in self.migrations.items())
            },
        }

    def to_bytes(self) -> bytes:
        """serde_json pretty form, no trailing newline."""
        return dumps_pretty(self.to_json_obj()).encode("utf-8")

    # --- editing (upstream updata / pubsys semantics, SPEC §5.8) -------------

    def add_update(
        self,
        version: Version,
        max_version: Version | None,
        arch: str,
        variant: str,
        images: Images,
    ) -> list[str]:
        """Append an update with empty waves; return warnings.

        ``max_version`` defaults to ``max(version, updates[0].max_version)`` and is
        then written to every update of the same arch and variant (upstream rule).
        """
        warnings: list[str] = []
        for existing in self.updates:
            if existing.matches(variant, arch, version):
                raise ManifestError(f"an update for {variant} {arch} {version} already exists")
        if max_version is None:
            if self.updates:
                first = self.updates[0]
                max_version = max(version, first.max_version)
                if (first.variant, first.arch) != (variant, arch):
                    warnings.append(
                        f"max_version {max_version} was derived from the first update, which is for "
                        f"{first.variant} {first.arch}, not {variant} {arch} (upstream rule); "
                        "pass --max-version to choose it"
                    )
            else:
                max_version = version
        self.update_max_version(max_version, arch, variant)
        self.updates.append(Update(variant, arch, version, max_version, {}, images))
        return warnings

    def update_max_version(self, max_version: Version, arch: str | None = None, variant: str | None = None) -> int:
        """Set ``max_version`` on every update matching the given filters; return the count."""
        count = 0
        for update in self.updates:
            if (arch is None or update.arch == arch) and (variant is None or update.variant == variant):
                update.max_version = max_version
                count += 1
        return count

    def remove_update(self, variant: str, arch: str, version: Version) -> list[str]:
        """Remove exact matches; ``max_version`` is left as it is (upstream). Return warnings."""
        kept = [u for u in self.updates if not u.matches(variant, arch, version)]
        if len(kept) == len(self.updates):
            return [f"no update for {variant} {arch} {version} in the manifest; nothing removed"]
        self.updates = kept
        remaining = [u for u in kept if u.variant == variant and u.arch == arch]
        if remaining:
            return [
                f"max_version of the remaining {variant} {arch} updates is still "
                f"{remaining[0].max_version}; use set-max-version to lower it"
            ]
        return []

    def set_waves(self, variant: str, arch: str, version: Version, start: int, policy: WavePolicy) -> list[str]:
        """Replace the waves of the matching update(s) from ``policy`` starting at ``start``."""
        matching = [u for u in self.updates if u.matches(variant, arch, version)]
        if not matching:
            raise ManifestError(f"no update for {variant} {arch} {version} in the manifest to set waves on")
        for update in matching:
            update.waves = policy_to_waves(policy, start)
        self.validate_waves()
        if len(matching) > 1:
            return [f"{len(matching)} updates match {variant} {arch} {version}; waves set on all of them"]
        return []

    def set_migrations(self, migrations: Mapping[MigrationKey, list[str]]) -> None:
        """Replace the whole ``migrations`` map (as updata and pubsys do), rejecting backward keys."""
        check_migration_keys(migrations)
        self.migrations = {k: list(v) for k, v in migrations.items()}

    def merge_migrations(self, migrations: Mapping[MigrationKey, list[str]], source: str = "Release.toml") -> list[str]:
        """Put Release.toml's steps over the manifest's; steps it does not list are kept (a
        Release.toml holding only the newest step must not cut older nodes off).  Return a warning
        for each step whose migration list changes."""
        check_migration_keys(migrations)
        warnings = []
        for key in [k for k in self.migrations if k[1] <= k[0]]:  # SPEC Decision 4: a live key updog cannot use
            del self.migrations[key]
            warnings.append(f"migration step {migration_key_text(key)} of the live manifest does not go forward; "
                            "it is dropped (updog's walk cannot use it)")
        for key, names in migrations.items():
            old = self.migrations.get(key)
            if old is not None and old != list(names):
                warnings.append(f"migration step {migration_key_text(key)} changes from {old or '[]'} to "
                                f"{list(names) or '[]'} ({source} replaces the live manifest's list)")
            self.migrations[key] = list(names)
        return warnings

    # --- validation ----------------------------------------------------------

    def validate_waves(self) -> None:
        for i, update in enumerate(self.updates):
            try:
                check_waves_ordered(update.waves)
            except ManifestError as exc:
                raise exc.within(f"updates[{i}] ({update.variant} {update.arch} {update.version})") from None

    def validate(self) -> None:
        """updata's check (wave order in every update) plus SPEC Decision 4 (no backward migrations)."""
        self.validate_waves()
        check_migration_keys(self.migrations)

    def target_names(self) -> list[str]:
        """Every target name the manifest refers to: images and migrations."""
        names: list[str] = []
        for update in self.updates:
            names.extend([update.images.boot, update.images.root, update.images.hash])
        for migration_names in self.migrations.values():
            names.extend(migration_names)
        return list(dict.fromkeys(names))


EMPTY_MANIFEST_BYTES = b'{\n  "updates": [],\n  "migrations": {}\n}'


# --- helpers shared with Release.toml parsing -------------------------------


def migration_key_text(key: MigrationKey) -> str:
    return f"({key[0]}, {key[1]})"


def parse_migration_key(text: str, error: type[ConfigError]) -> MigrationKey:
    """Upstream's unanchored ``(from, to)`` match; both sides strict semver."""
    match = _MIGRATION_KEY.search(text)
    if match is None:
        raise error(f"Could not parse OS versions: {text}")
    from_text, to_text = match.group("from_ver"), match.group("to_ver")
    try:
        return Version.parse(from_text), Version.parse(to_text)
    except VersionError:
        raise error(f"Could not parse OS versions: {from_text}, {to_text}") from None


def parse_migrations(value: object, where: str, error: type[ConfigError]) -> dict[MigrationKey, list[str]]:
    """A ``{"(from, to)": [names]}`` map from JSON pairs or a TOML table."""
    pairs: Iterable[tuple[str, object]]
    if isinstance(value, _Pairs):
        pairs = value
    elif isinstance(value, dict):
        pairs = value.items()
    else:
        raise error(f"{where}: expected an object, found {_json_type(value)}")
    result: dict[MigrationKey, list[str]] = {}
    for key_text, names in pairs:
        try:
            key = parse_migration_key(key_text, error)
        except ConfigError as exc:
            raise exc.within(where) from None
        if key in result:
            raise error(f"{where}: Duplicate version key: {key_text}")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise error(f"{where}[{key_text!r}]: expected an array of target names")
        result[key] = list(names)
    return result


def check_migration_keys(migrations: Iterable[MigrationKey]) -> None:
    """SPEC Decision 4: a key must go forward (``to > from``)."""
    for key in migrations:
        if key[1] <= key[0]:
            raise ManifestError(
                f"migrations: key {migration_key_text(key)!r} does not go forward "
                "(the 'to' version must be greater than the 'from' version)"
            )


def dumps_pretty(obj: object) -> str:
    """serde_json ``to_string_pretty`` layout: 2-space indent, raw non-ASCII, no final newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False)


# --- strict JSON reading -----------------------------------------------------


class _Pairs:
    """A JSON object as its member list, so duplicate members stay visible."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self.items)


def load_json_pairs(data: bytes | str, error: type[ConfigError]) -> Any:
    """Parse JSON like serde_json: UTF-8 only, no NaN/Infinity, no BOM; objects as :class:`_Pairs`."""
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise error(f"invalid JSON: lone surrogate at character {exc.start}") from None
    try:
        text = strict_text(data)
    except JSONTextError as exc:
        raise error(str(exc)) from None
    try:
        value = json.loads(text, object_pairs_hook=_Pairs, parse_constant=reject_constant)
    except ValueError as exc:
        raise error(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise error(f"invalid JSON: recursion limit exceeded (nesting deeper than {_MAX_JSON_DEPTH})") from None
    # Only a \ud800-style escape can produce a lone surrogate in text that was valid UTF-8.
    _check_tree(value, error, check_strings=SURROGATE_ESCAPE.search(text) is not None)
    return value


def _check_tree(value: object, error: type[ConfigError], check_strings: bool) -> None:
    """What serde_json refuses and Python's json accepts: nesting deeper than 128 arrays/objects
    ("recursion limit exceeded") and, when ``check_strings``, lone UTF-16 surrogates (``"\\ud800"``)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if check_strings and not _encodes(node):
                raise error(f"invalid JSON: lone surrogate in string {node!r}")
            continue
        if isinstance(node, _Pairs):
            children: list[object] = [item for pair in node for item in pair]
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth + 1 > _MAX_JSON_DEPTH:
            raise error(f"invalid JSON: recursion limit exceeded (nesting deeper than {_MAX_JSON_DEPTH})")
        stack.extend((child, depth + 1) for child in children)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_type(value: object) -> str:
    if isinstance(value, _Pairs):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return f"string {value!r}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    return f"number {value!r}"


def _struct(value: object, where: str, known: tuple[str, ...]) -> dict[str, Any]:
    """A serde struct: known members once each, unknown members ignored."""
    if not isinstance(value, _Pairs):
        raise ManifestError(f"{where}: expected an object, found {_json_type(value)}")
    fields: dict[str, Any] = {}
    for key, item in value:
        if key in known:
            if key in fields:
                raise ManifestError(f"{where}: duplicate field `{key}`")
            fields[key] = item
    return fields


def _require(fields: dict[str, Any], name: str, where: str) -> Any:
    if name not in fields:
        raise ManifestError(f"{where}: missing field `{name}`")
    return fields[name]


def _string(fields: dict[str, Any], name: str, where: str) -> str:
    value = _require(fields, name, where)
    if not isinstance(value, str):
        raise ManifestError(f"{where}.{name}: expected a string, found {_json_type(value)}")
    return value


def _typed(parse: Callable[[str], T], fields: dict[str, Any], name: str, where: str) -> T:
    text = _string(fields, name, where)
    try:
        return parse(text)
    except ConfigError as exc:
        raise ManifestError(f"{where}.{name}: {exc}") from None


def parse_wave_bound(key: str) -> int:
    """A wave key, parsed as upstream parses it (``u32::from_str``)."""
    bound = parse_u32(key)
    if bound is None:
        raise ManifestError(f"Bad bound field: {key}")
    return bound


def _parse_waves(value: object, where: str) -> dict[int, int]:
    if not isinstance(value, _Pairs):
        raise ManifestError(f"{where}: expected an object, found {_json_type(value)}")
    waves: dict[int, int] = {}
    for key, time_value in value:
        # serde reads the value before upstream's key check runs, so its errors come first.
        if not isinstance(time_value, str):
            raise ManifestError(f"{where}[{key!r}]: expected a time string, found {_json_type(time_value)}")
        try:
            instant = parse_instant(time_value)
        except InstantError as exc:
            raise ManifestError(f"{where}[{key!r}]: {exc}") from None
        try:
            bound = parse_wave_bound(key)
        except ManifestError as exc:
            raise exc.within(where) from None
        if bound in waves:
            raise ManifestError(f"{where}: Duplicate key ID: {bound}")
        waves[bound] = instant
    return waves


def _parse_update(value: object, where: str) -> Update:
    fields = _struct(value, where, ("variant", "arch", "version", "max_version", "waves", "images"))
    variant = _string(fields, "variant", where)
    arch = _string(fields, "arch", where)
    version = _typed(Version.parse, fields, "version", where)
    max_version = _typed(Version.parse, fields, "max_version", where)
    waves = _parse_waves(_require(fields, "waves", where), f"{where}.waves")
    image_fields = _struct(_require(fields, "images", where), f"{where}.images", ("boot", "root", "hash"))
    images = Images(
        boot=_string(image_fields, "boot", f"{where}.images"),
        root=_string(image_fields, "root", f"{where}.images"),
        hash=_string(image_fields, "hash", f"{where}.images"),
    )
    return Update(variant, arch, version, max_version, waves, images)
