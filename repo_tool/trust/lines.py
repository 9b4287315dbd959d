"""Many short texts checked against one pattern at once (a publish checks 10,000 target names and digests).

:func:`lines_of` compiles a pattern for :func:`all_match`, which joins the texts one a line and
checks them in one pass.  A pattern that is one class of ASCII characters repeated (``[...]+`` or
``[...]{n}``, as the name and digest patterns are) is checked by deleting the class's bytes from
the joined text (``bytes.translate``: nothing may remain) plus a count of line breaks and, for a
fixed width, their positions: the same answer as the repeated pattern, several times faster than
a regex that repeats a group.  Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# One class of literal ASCII characters and ranges (no escape, not negated), repeated.
_ONE_CLASS = re.compile(r"\[([\x20-\x5b\x5f-\x7e][\x20-\x5b\x5e-\x7e]*)\](?:\+|\{([1-9][0-9]*)\})")


@dataclass(frozen=True)
class Lines:
    """A pattern prepared for :func:`all_match`: ``repeated`` is it repeated, one match a line;
    ``chars`` (a one-class pattern only) is the bytes of its class and the line break, ``width``
    its fixed length if any."""

    repeated: re.Pattern[str]
    chars: bytes | None
    width: int | None


def lines_of(pattern: re.Pattern[str]) -> Lines:
    """``pattern`` prepared for :func:`all_match`."""
    source = pattern.pattern
    repeated = re.compile(rf"(?:{source})(?:\n(?:{source}))*")
    one_class = _ONE_CLASS.fullmatch(source)
    if one_class is None or pattern.flags & ~re.UNICODE:
        return Lines(repeated, None, None)
    in_class = re.compile(f"[{one_class[1]}]")
    chars = bytes(byte for byte in range(128) if in_class.fullmatch(chr(byte))) + b"\n"
    return Lines(repeated, chars, int(one_class[2]) if one_class[2] else None)


def all_match(lines: Lines, texts: list[str]) -> bool:
    """Every one of ``texts`` (none empty of them) fully matches the pattern of ``lines``, checked
    joined in one pass.  A text holding a newline would be two lines: the count of lines tells.

    For a one-class pattern: every character is in the class (or a line break), there are exactly
    ``len(texts) - 1`` line breaks, so each text is one line; no text is empty (``+``), or (``{n}``)
    the breaks stand exactly every ``n + 1`` characters, so each text is ``n`` long."""
    joined = "\n".join(texts)
    count = len(texts)
    if not texts or joined.count("\n") != count - 1:
        return False
    if lines.chars is None:
        return lines.repeated.fullmatch(joined) is not None
    if not joined.isascii() or joined.encode("ascii").translate(None, lines.chars):
        return False
    width = lines.width
    if width is None:
        return "" not in texts
    return len(joined) == count * (width + 1) - 1 and joined[width::width + 1] == "\n" * (count - 1)
