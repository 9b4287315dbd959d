"""A verified target's bytes as they stream from the source, checked as they pass: what ``mirror``
copies and ``download`` saves (one rule for both: never more than the listed length, and a
:class:`~repo_tool.trust.verifier.TargetError` after the last chunk if fewer came or the sha256 is
not the listed one)."""

from __future__ import annotations

from collections.abc import Generator

from repo_tool.core.checked import checked
from repo_tool.storage.base import Storage
from repo_tool.trust.verifier import Target, TargetError


def target_chunks(targets: Storage, name: str, target: Target) -> Generator[bytes, None, None]:
    """``target``'s bytes from the object ``name`` of ``targets`` (its name on storage), checked."""
    chunks = targets.stream(name, target.length)
    if chunks is None:
        raise TargetError(f"target {target.name}: {targets.describe(name)} not found")
    return checked(chunks, target.length, target.sha256, f"target {target.name}: {targets.describe(name)}",
                   TargetError)
