"""Read named bytes: the one protocol every source of files is read through (:class:`Reader`).

A storage location, a node's metadata or targets base URL, a client's role-file source: each is a
:class:`Reader` (``url``, ``read``, ``describe``; a :class:`StreamReader` also ``stream``), and the
trust layer, the auditor and the node take one instead of naming a backend.  Pure: protocols only.
Must not: import anything of the package, or know TUF, storage backends or the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class Reader(Protocol):
    """Named bytes under ``url``: what the publisher, the auditor and a node all read through."""

    url: str

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        """The bytes of ``name``, or None if it does not exist; more than ``limit`` bytes is an error."""
        ...

    def describe(self, name: str) -> str:
        """Where ``name`` is (a path or URL), for messages."""
        ...


class StreamReader(Reader, Protocol):
    """A :class:`Reader` that also hands an object over in chunks (a large target: never whole)."""

    def stream(self, name: str, limit: int) -> Iterator[bytes] | None:
        """The object in chunks (None if missing); more than ``limit`` bytes is an error."""
        ...
