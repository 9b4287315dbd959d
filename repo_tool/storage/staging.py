"""Staged writes: objects taken whole from a stream but not yet visible under their names, shown together
once every one of them verified (a mirror's or a re-root's targets), or all dropped.

:class:`Streamable` is a storage that stores (or stages) an object from chunks produced elsewhere;
:class:`Staged` one staged object; :class:`StagedBatch` the objects of one job and the rule for ending it
(a failed check drops them all, any other failure keeps those that verified).  The backends implement
the protocols (:class:`~repo_tool.storage.base.LocalStorage`: a temporary file beside the name;
:class:`~repo_tool.storage.s3.S3Storage`: a multipart upload not yet completed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from repo_tool.errors import VerificationError
from repo_tool.storage.base import Sent


class Staged(Protocol):
    """An object whose bytes are all stored but not yet visible under its name (a temporary file, an
    S3 multipart upload not completed): :meth:`commit` makes it appear (write-once), :meth:`discard`
    drops it.  One of the two must be called."""

    def commit(self) -> bool:
        """Show it under its name; False if the name already held an object of the same size."""
        ...

    def discard(self) -> None:
        """Drop the stored bytes (best effort: never raises)."""
        ...


@runtime_checkable
class Streamable(Protocol):
    """A storage that stores an object from chunks produced elsewhere (a mirror's download), write-once:
    ``name`` appears only after the last chunk was taken without error (the producer checks the bytes and
    raises at the end if they are wrong), so a refused stream never shows under ``name``.  False if
    ``name`` is already stored with ``size`` bytes (nothing read from ``chunks``).

    :meth:`stage_stream` takes every chunk the same way but leaves the object unseen until its
    :class:`Staged` is committed: a job that stages every object first commits none of them unless all
    verified (:class:`StagedBatch`)."""

    def put_stream(self, name: str, chunks: Iterable[bytes], size: int, sent: Sent | None = None) -> bool: ...

    def stage_stream(self, name: str, chunks: Iterable[bytes], size: int, sent: Sent | None = None
                     ) -> Staged | None:
        """Store the chunks unseen; None (nothing read) if ``name`` is already stored with ``size`` bytes."""
        ...


class StagedBatch:
    """Objects staged by one job (from several threads at once), committed together once every one of
    them was taken whole and checked, or all discarded: a source that fails anywhere leaves nothing of
    it under any name."""

    def __init__(self) -> None:
        self._staged: list[Staged] = []
        self._lock = threading.Lock()

    def stage(self, store: Streamable, name: str, chunks: Iterable[bytes], size: int, sent: Sent | None = None
              ) -> bool:
        """Stage ``chunks`` as ``name`` in ``store``; False if it is stored already (nothing to commit)."""
        staged = store.stage_stream(name, chunks, size, sent)
        if staged is None:
            return False
        with self._lock:
            self._staged.append(staged)
        return True

    def commit(self) -> None:
        """Show every staged object (in the order staged); on a failure the rest are discarded."""
        with self._lock:
            pending, self._staged = self._staged, []
        for index, staged in enumerate(pending):
            try:
                staged.commit()
            except BaseException:
                for rest in pending[index + 1:]:
                    rest.discard()
                raise

    def discard(self) -> None:
        """Drop every staged object."""
        with self._lock:
            pending, self._staged = self._staged, []
        for staged in pending:
            staged.discard()

    def end(self, failure: BaseException) -> None:
        """After ``failure``: a source that failed verification leaves nothing (every staged object
        dropped); anything else (the network, the destination, an interrupt) keeps what was staged, each
        object whole and verified, so a rerun resumes after it (best effort: the failure is what to report)."""
        if isinstance(failure, VerificationError):
            self.discard()
            return
        try:
            self.commit()
        except Exception:  # a second failure: the first one is what the caller raises
            self.discard()
