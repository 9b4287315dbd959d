"""A stream of downloaded chunks checked as it passes: length and SHA-256 against what was signed.

Pure (the chunks come from the caller); shared by the node's image download and the mirror's copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Iterable

from repo_tool.core.lz4frames import ImageError


def checked(chunks: Iterable[bytes], length: int, sha256: str, what: str,
            error: Callable[[str], Exception] = ImageError) -> Generator[bytes, None, None]:
    """Pass ``chunks`` through, failing (``error(message)``, naming ``what``) as soon as more than
    ``length`` bytes arrive, and after the last chunk if fewer arrived or their SHA-256 is not
    ``sha256``: a writer that takes every chunk before it commits never stores wrong bytes."""
    digest = hashlib.sha256()
    got = 0
    iterator = iter(chunks)
    try:
        for chunk in iterator:
            got += len(chunk)
            if got > length:
                raise error(f"{what}: more than the expected {length} bytes")
            digest.update(chunk)
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if got < length:
        raise error(f"{what}: expected {length} bytes, got {got}")
    if digest.hexdigest() != sha256.lower():
        raise error(f"{what}: SHA-256 mismatch: expected {sha256.lower()}, got {digest.hexdigest()}")
