"""The one rule for decoding an image's LZ4 frames, shared by the node and the publisher.

A Bottlerocket image is one or more concatenated LZ4 frames.  The node decodes them into a partition
(:mod:`repo_tool.node.staging`); the publisher and the auditor decode them only to refuse an image a node
could not install (:mod:`repo_tool.hashing`).  Both go through :class:`LZ4Frames`, so they cannot
disagree about which files are good: the first four bytes must be the LZ4 frame magic
(``04 22 4d 18``), every frame must decode (liblz4's ``LZ4F_decompress``, through python-lz4, with its
block and content checksums when the frame has them), and the input must not end inside a frame.

Why it calls python-lz4's low-level ``decompress_chunk`` and not ``LZ4FrameDecompressor``: the class
copies a ``memoryview`` into ``bytes`` and, when ``max_length`` stops it early, joins the input it did
not consume to the next call's (``unconsumed + data``), which is quadratic when large input pieces meet
a small ``max_length`` (measured here, python-lz4 4.4.5: 4 MiB pieces with a small ``max_length``
are catastrophically slow).  Here the input is a ``memoryview`` that is sliced, never copied, and each
call gets at most ``piece`` bytes of it and may return at most ``piece`` bytes.  Small pieces are
also the fastest way to feed liblz4 (4 MiB-block frames of half random, half text data, ratio ~2, one
core): 256 KiB in and out ~2.5 GB/s of input, 1 MiB in with 4 MiB out ~2.0, 4 MiB in with 8 MiB
out ~1.3, ``max_length=-1`` 0.8-1.6; the output stays in the core's cache.  ``decompress_chunk``
releases the GIL while liblz4 works, so a decoding thread runs beside a hashing thread on another
core (:mod:`repo_tool.hashing`).

Memory is bounded whatever the compression ratio: liblz4 keeps at most one block of input and one of
output (4 MiB each for 4 MiB blocks), and each decoded piece is at most ``piece`` bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

from lz4.frame import create_decompression_context, decompress_chunk

from repo_tool.errors import VerificationError

LZ4_MAGIC = b"\x04\x22\x4d\x18"
PIECE = 4 << 20  # default: input per decode call and most output per decoded piece (lz4's largest block)

Data = bytes | bytearray | memoryview


class ImageError(VerificationError):
    """An image failed its length or hash check, is not LZ4, or does not fit or could not be written."""


class LZ4Frames:
    """Incremental decoder of one or more concatenated LZ4 frames of the image ``what``.

    Call :meth:`feed` with each piece of the image in order and iterate what it returns to the end
    (or call :meth:`check` to decode and drop), then :meth:`finish`.  Every failure is a one-line
    :class:`ImageError` naming ``what``: ``not an LZ4 frame``, ``invalid LZ4 data``, ``truncated LZ4
    frame``.  The data fed is only read during the call, never kept: a buffer may be reused after it.
    """

    def __init__(self, what: str, piece: int = PIECE) -> None:
        if piece <= 0:
            raise ValueError(f"piece must be positive, not {piece}")
        self.what = what
        self.piece = piece
        self.decoded = 0  # decompressed bytes so far
        self._head: bytes | None = b""  # the first bytes, until the magic has been checked
        self._context = create_decompression_context()
        self._in_frame = False  # liblz4 holds part of a frame: the input must not end here

    def feed(self, data: Data) -> Iterator[bytes]:
        """Decode ``data``, the next bytes of the image: yields decompressed pieces of at most
        ``piece`` bytes each."""
        if self._head is not None:
            if len(self._head) + len(data) < len(LZ4_MAGIC):
                self._head += bytes(data)
                return
            first = self._head + bytes(data[:len(LZ4_MAGIC) - len(self._head)])
            if first != LZ4_MAGIC:
                raise self._not_lz4(first)
            pending, self._head = self._head, None
            if pending:
                yield from self._decode(memoryview(pending))
        view = data if isinstance(data, memoryview) else memoryview(data)
        if len(view) <= self.piece:
            yield from self._decode(view)
            return
        for start in range(0, len(view), self.piece):
            yield from self._decode(view[start:start + self.piece])

    def check(self, data: Data) -> None:
        """:meth:`feed`, dropping the decompressed bytes (the publisher only needs to know they decode)."""
        for _ in self.feed(data):
            pass

    def finish(self) -> None:
        """The input has ended: fail unless it held at least one frame and ended between frames."""
        if self._head is not None:
            raise self._not_lz4(self._head)
        if self._in_frame:
            raise ImageError(f"{self.what}: truncated LZ4 frame")

    def _not_lz4(self, head: bytes) -> ImageError:
        shown = head[:len(LZ4_MAGIC)].hex(" ") or "nothing"
        return ImageError(f"{self.what}: not an LZ4 frame (starts with {shown}, expected {LZ4_MAGIC.hex(' ')})")

    def _decode(self, data: memoryview) -> Iterator[bytes]:
        limit = self.piece
        while True:
            try:
                out, read, end = decompress_chunk(self._context, data, max_length=limit)
            except RuntimeError as exc:
                raise ImageError(f"{self.what}: invalid LZ4 data ({exc})") from None
            if out:
                self.decoded += len(out)
                yield out
            data = data[read:]
            if end:  # liblz4 is ready for the next frame; one may follow in the same input
                self._in_frame = False
                if not data:
                    return
                continue
            if read:
                self._in_frame = True
            if len(out) == limit:  # the output was cut at the limit: more may be waiting
                continue
            if data:  # liblz4 stopped with input left and room to write: never happens
                raise ImageError(f"{self.what}: invalid LZ4 data (the decoder stopped {len(data)} bytes early)")
            return
