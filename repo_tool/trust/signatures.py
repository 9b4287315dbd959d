"""Is this signed enough: one :class:`VerificationResult` from one function (SPEC §3.4).

Every question "which keys signed, and is the threshold met" asked of a root, a top-level role,
a delegated role or a root file being signed offline is answered by :func:`check_signatures`,
computed once and judged where it is used.  Key IDs match without regard to case, a key counts
once however often it signs, and only key IDs the role lists *and* whose entry is known count.

Nothing here reads files, the clock or the network, and nothing here knows a role's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repo_tool.trust.keys import verify


@dataclass(frozen=True)
class VerificationResult:
    """The signatures of one role file as one role definition judges them."""

    threshold: int
    signed: frozenset[str]  # lower-case key IDs of the role whose signature verifies
    unsigned: frozenset[str]  # lower-case key IDs of the role without a valid signature

    @property
    def verified(self) -> bool:
        return len(self.signed) >= self.threshold

    @property
    def missing(self) -> int:
        """How many more valid signatures the threshold needs (0 when verified)."""
        return max(0, self.threshold - len(self.signed))


def check_signatures(data: bytes, signatures: Sequence[Mapping[str, Any]], keys: Mapping[str, Any],
                     keyids: Iterable[str], threshold: int) -> VerificationResult:
    """The signatures over ``data`` (canonical signed bytes) by the role with ``keyids`` and
    ``threshold``, whose key entries are in ``keys`` (key ID -> entry)."""
    allowed = {k.lower() for k in keyids}
    entries = {k.lower(): v for k, v in keys.items()}
    good: set[str] = set()
    for sig in signatures:
        keyid = sig["keyid"].lower()
        if keyid in good or keyid not in allowed or keyid not in entries:
            continue
        if verify(entries[keyid], sig["sig"], data):
            good.add(keyid)
    return VerificationResult(threshold, frozenset(good), frozenset(allowed - good))


def duplicate_keyids(signatures: Sequence[Mapping[str, Any]]) -> list[str]:
    """Key IDs (lower-case, in order of first repeat) that sign more than once in ``signatures``.

    The TUF specification says key IDs in ``signatures`` MUST be unique, and python-tuf refuses such
    a file; tough counts a key once however often it signs.  Upper and lower case name the same key
    here (tough and this tool match key IDs without regard to case)."""
    seen: set[str] = set()
    repeated: list[str] = []
    for sig in signatures:
        keyid = sig["keyid"].lower()
        if keyid in seen and keyid not in repeated:
            repeated.append(keyid)
        seen.add(keyid)
    return repeated
