"""Strict semantic versions with the rules of Rust's ``semver`` crate 1.0 (SPEC §5.2).

Parsing: ``MAJOR.MINOR.PATCH[-pre][+build]``; no ``v`` prefix, no whitespace, no
leading zeros in the three numbers or in numeric pre-release identifiers;
identifiers are non-empty ``[0-9A-Za-z-]``; build identifiers may have leading
zeros.  Ordering is SemVer precedence followed by build metadata as a final
tie-breaker, so equality includes build metadata (``1.0.0+a != 1.0.0``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from repo_tool.errors import VersionError

_U64_MAX = 2**64 - 1
_IDENT_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")


def _is_numeric(ident: str) -> bool:
    return all("0" <= c <= "9" for c in ident)


def _pre_ident_key(ident: str) -> tuple[int, int, str]:
    # Numeric identifiers (no leading zeros) compare by value: length, then digits.
    return (0, len(ident), ident) if _is_numeric(ident) else (1, 0, ident)


def _build_ident_key(ident: str) -> tuple[int, int, str, int]:
    # semver 1.0: 0 < 00 < 1 < 01 < 001 < 2 ...; numeric below alphanumeric.
    if _is_numeric(ident):
        value = ident.lstrip("0")
        return (0, len(value), value, len(ident))
    return (1, 0, ident, 0)


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    """A parsed version; compare and hash like the Rust crate."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    _key: tuple[object, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        pre_key: tuple[object, ...] = (0, tuple(_pre_ident_key(i) for i in self.pre)) if self.pre else (1,)
        build_key: tuple[object, ...] = (1, tuple(_build_ident_key(i) for i in self.build)) if self.build else (0,)
        object.__setattr__(self, "_key", (self.major, self.minor, self.patch, pre_key, build_key))

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse strictly; raise :class:`VersionError` naming what is wrong."""
        if not isinstance(text, str):
            raise VersionError(f"invalid version {text!r}: expected a string")
        return _parse_version(text)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += "-" + ".".join(self.pre)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key < other._key


@functools.lru_cache(maxsize=4096)
def _parse_version(text: str) -> Version:
    """Versions repeat a lot in a manifest (every update, every migration key) and are immutable."""
    rest, _, build_text = text.partition("+")
    core, _, pre_text = rest.partition("-")
    if "+" in text and not build_text:
        raise VersionError(f"invalid version {text!r}: empty build metadata")
    if "-" in rest and not pre_text:
        raise VersionError(f"invalid version {text!r}: empty pre-release")
    parts = core.split(".")
    if len(parts) != 3:
        raise VersionError(f"invalid version {text!r}: expected MAJOR.MINOR.PATCH")
    numbers = []
    for name, part in zip(("major", "minor", "patch"), parts):
        if not part or not _is_numeric(part):
            raise VersionError(f"invalid version {text!r}: {name} {part!r} is not a number")
        if len(part) > 1 and part[0] == "0":
            raise VersionError(f"invalid version {text!r}: leading zero in {name}")
        value = int(part) if len(part) <= 20 else _U64_MAX + 1
        if value > _U64_MAX:
            raise VersionError(f"invalid version {text!r}: {name} too large")
        numbers.append(value)
    pre = tuple(pre_text.split(".")) if pre_text else ()
    build = tuple(build_text.split(".")) if build_text else ()
    for kind, idents in (("pre-release", pre), ("build metadata", build)):
        for ident in idents:
            if not ident:
                raise VersionError(f"invalid version {text!r}: empty {kind} identifier")
            if not set(ident) <= _IDENT_CHARS:
                raise VersionError(f"invalid version {text!r}: bad character in {kind} {ident!r}")
    for ident in pre:
        if _is_numeric(ident) and len(ident) > 1 and ident[0] == "0":
            raise VersionError(f"invalid version {text!r}: leading zero in pre-release {ident!r}")
    return Version(numbers[0], numbers[1], numbers[2], pre, build)
