"""How the library reports the progress of a long job (bytes hashed, sent, streamed): :class:`Progress`.

A job calls ``start(label, total)``, then ``advance(count)`` as bytes are done (from any number of
threads at once), then ``stop()``; the same object may run several jobs one after another (publish:
hashing, then uploading).  This base reports nothing: the command line passes one that draws a line on
a terminal (:mod:`repo_tool.cli.progress`).  Must not: print, read a clock or do any I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Progress:
    """Progress of one job at a time, in bytes; every method does nothing here."""

    def start(self, label: str, total: int) -> None:
        """A job named ``label`` begins; ``total`` bytes are expected (0: unknown)."""

    def advance(self, count: int) -> None:
        """``count`` more bytes are done (called from several threads at once)."""

    def stop(self) -> None:
        """The job is over (finished or failed)."""


NO_PROGRESS = Progress()


def counted(chunks: Iterable[bytes], progress: Progress) -> Iterator[bytes]:
    """``chunks`` passed through, each one's length reported to ``progress`` once it is handed on;
    closing the result closes ``chunks``."""
    iterator = iter(chunks)
    try:
        for chunk in iterator:
            yield chunk
            progress.advance(len(chunk))
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
