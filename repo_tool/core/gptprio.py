"""Bottlerocket's A/B partition-set priorities ("gptprio"), as signpost and GRUB use them (SPEC §9.6).

Each partition set (boot, root, hash) keeps its boot flags in the GPT attribute
field (a little-endian u64) of its **boot** partition entry:

* bits 48–51: ``priority`` (0..15; 0 = never boot)
* bits 52–55: ``tries_left`` (0..15)
* bit 56: ``successful`` (this set has booted successfully)

Bit 57 of the PRIVATE partition's attributes (:data:`EVER_BOOTED_BIT`) records
that some boot ever succeeded; it lives outside :class:`Sets`, so callers of
:func:`mark_successful_boot` also set it when they write the table.

Every operation here is pure: it takes a :class:`Sets` value and returns a new
one; reading and writing the partition table is :mod:`repo_tool.node.gpt`'s job.
The operations and their errors follow signpost (``sources/updater/signpost``),
except that :func:`cancel_upgrade` leaves ``tries_left`` alone (an old signpost
bug wiped it).  :func:`grub_boot` models what GRUB's ``gptprio.next`` does at
boot, so a test can follow an update through the reboot.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from repo_tool.errors import VerificationError

SetName = Literal["A", "B"]
SET_NAMES: tuple[SetName, SetName] = ("A", "B")

PRIORITY_SHIFT = 48
TRIES_LEFT_SHIFT = 52
SUCCESSFUL_BIT = 56
EVER_BOOTED_BIT = 57
"""Attribute bit of the PRIVATE partition: a boot has ever succeeded on this disk."""

_NIBBLE = 0xF
_U64_MAX = 2**64 - 1
_FLAG_MASK = (_NIBBLE << PRIORITY_SHIFT) | (_NIBBLE << TRIES_LEFT_SHIFT) | (1 << SUCCESSFUL_BIT)


class GptPrioError(VerificationError):
    """A partition-set operation is not allowed in the current state (exit code 1)."""


class InactiveAlreadyMarkedError(GptPrioError):
    """signpost ``InactiveAlreadyMarked``: the inactive set already has a priority or a successful boot."""


class InactiveNotValidError(GptPrioError):
    """signpost ``InactiveNotValid``: the inactive set was not marked valid (``tries_left`` is 0)."""


class InactiveInvalidRollbackError(GptPrioError):
    """signpost ``InactiveInvalidRollback``: the inactive set would not boot."""


@dataclass(frozen=True)
class Flags:
    """The gptprio fields of one set's boot partition."""

    priority: int
    tries_left: int
    successful: bool

    def __post_init__(self) -> None:
        for field, value in (("priority", self.priority), ("tries_left", self.tries_left)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _NIBBLE:
                raise ValueError(f"gptprio {field} must be an integer 0..15, not {value!r}")
        if not isinstance(self.successful, bool):
            raise ValueError(f"gptprio successful must be a bool, not {self.successful!r}")

    @property
    def will_boot(self) -> bool:
        """Whether GRUB may choose this set: it has tries left (with a priority) or booted before."""
        return (self.priority > 0 and self.tries_left > 0) or self.successful

    def __str__(self) -> str:
        return f"priority={self.priority} tries_left={self.tries_left} successful={str(self.successful).lower()}"


def _check_u64(attributes: int) -> None:
    if isinstance(attributes, bool) or not isinstance(attributes, int) or not 0 <= attributes <= _U64_MAX:
        raise ValueError(f"GPT attributes must be an unsigned 64-bit integer, not {attributes!r}")


def decode(attributes: int) -> Flags:
    """The gptprio flags held in a boot partition's attribute bits."""
    _check_u64(attributes)
    return Flags(
        priority=(attributes >> PRIORITY_SHIFT) & _NIBBLE,
        tries_left=(attributes >> TRIES_LEFT_SHIFT) & _NIBBLE,
        successful=bool((attributes >> SUCCESSFUL_BIT) & 1),
    )


def encode(attributes: int, flags: Flags) -> int:
    """``attributes`` with bits 48–56 replaced by ``flags``; every other bit is kept."""
    _check_u64(attributes)
    return (
        (attributes & ~_FLAG_MASK)
        | (flags.priority << PRIORITY_SHIFT)
        | (flags.tries_left << TRIES_LEFT_SHIFT)
        | (int(flags.successful) << SUCCESSFUL_BIT)
    )


@dataclass(frozen=True)
class Sets:
    """The flags of both partition sets and which one is running (``active``)."""

    a: Flags
    b: Flags
    active: SetName

    def __post_init__(self) -> None:
        if self.active not in SET_NAMES:
            raise ValueError(f"active set must be 'A' or 'B', not {self.active!r}")

    @property
    def inactive(self) -> SetName:
        return "B" if self.active == "A" else "A"

    def flags(self, name: SetName) -> Flags:
        return self.a if name == "A" else self.b

    def replace(self, name: SetName, flags: Flags) -> Sets:
        """A copy with set ``name``'s flags replaced."""
        if name == "A":
            return dataclasses.replace(self, a=flags)
        return dataclasses.replace(self, b=flags)


def _change(
    sets: Sets, name: SetName, *, priority: int | None = None, tries_left: int | None = None,
    successful: bool | None = None,
) -> Sets:
    """``sets`` with the given fields of set ``name`` changed."""
    old = sets.flags(name)
    return sets.replace(name, Flags(
        priority=old.priority if priority is None else priority,
        tries_left=old.tries_left if tries_left is None else tries_left,
        successful=old.successful if successful is None else successful,
    ))


def clear_inactive(sets: Sets) -> Sets:
    """Before writing new images: the inactive set gets priority 0, tries_left 0, not successful."""
    return sets.replace(sets.inactive, Flags(priority=0, tries_left=0, successful=False))


def mark_inactive_valid(sets: Sets) -> Sets:
    """After the images are written: the inactive set gets tries_left 1 (priority unchanged)."""
    return _change(sets, sets.inactive, tries_left=1)


def upgrade_to_inactive(sets: Sets) -> Sets:
    """Make the next boot try the inactive set once: inactive priority 2 (not successful), active priority 1.

    Raises :class:`InactiveAlreadyMarkedError` if the inactive set has a
    priority or a successful boot, :class:`InactiveNotValidError` if it was not
    marked valid (``tries_left`` 0).
    """
    inactive = sets.flags(sets.inactive)
    if inactive.priority != 0 or inactive.successful:
        raise InactiveAlreadyMarkedError(
            f"inactive partition set {sets.inactive} is already marked for upgrade ({inactive})"
        )
    if inactive.tries_left == 0:
        raise InactiveNotValidError(
            f"inactive partition set {sets.inactive} has not been marked valid for upgrade"
            f" ({inactive})"
        )
    return _change(_change(sets, sets.inactive, priority=2, successful=False), sets.active, priority=1)


def cancel_upgrade(sets: Sets) -> Sets:
    """Undo :func:`upgrade_to_inactive`: inactive priority 0, active priority 2; ``tries_left`` untouched."""
    return _change(_change(sets, sets.inactive, priority=0), sets.active, priority=2)


def mark_successful_boot(sets: Sets) -> Sets:
    """The running set booted: mark it successful.  Callers also set :data:`EVER_BOOTED_BIT` on PRIVATE."""
    return _change(sets, sets.active, successful=True)


def rollback_to_inactive(sets: Sets) -> Sets:
    """Prefer the inactive set on the next boot: inactive priority 2, active priority 1.

    Raises :class:`InactiveInvalidRollbackError` unless the inactive set would boot.
    """
    inactive = sets.flags(sets.inactive)
    if not inactive.will_boot:
        raise InactiveInvalidRollbackError(
            f"inactive partition set {sets.inactive} is not valid to roll back to"
            f" ({inactive})"
        )
    return _change(_change(sets, sets.inactive, priority=2), sets.active, priority=1)


def next_boot(sets: Sets) -> SetName | None:
    """The set signpost reports as booting next: of the sets that would boot, the higher priority; ties go to A."""
    a, b = sets.a.will_boot, sets.b.will_boot
    if a and b:
        return "A" if sets.a.priority >= sets.b.priority else "B"
    if a:
        return "A"
    if b:
        return "B"
    return None


def grub_boot(sets: Sets) -> tuple[SetName | None, Sets]:
    """What GRUB's ``gptprio.next`` does at boot: the chosen set and the flags it leaves behind.

    Among the sets with ``tries_left > 0`` or ``successful``, the highest
    priority wins, compared with a strict ``>`` starting from 0 (so priority
    must be at least 1, and A wins ties).  If the chosen set has tries left, one
    is used up.  The returned :class:`Sets` has ``active`` set to the booted
    set; when nothing can boot the input is returned unchanged with ``None``.
    """
    chosen: SetName | None = None
    best = 0
    for name in SET_NAMES:
        flags = sets.flags(name)
        if (flags.tries_left > 0 or flags.successful) and flags.priority > best:
            chosen, best = name, flags.priority
    if chosen is None:
        return None, sets
    booted = dataclasses.replace(sets, active=chosen)
    tries_left = booted.flags(chosen).tries_left
    if tries_left > 0:
        booted = _change(booted, chosen, tries_left=tries_left - 1)
    return chosen, booted
