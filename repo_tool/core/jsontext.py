"""Strict JSON text as serde_json reads it (and so tough and updog): the rules TUF metadata and
``manifest.json`` share.

* :func:`strict_text` — the bytes as text: UTF-8 only, no byte order mark;
* :func:`reject_constant` — the ``parse_constant`` hook refusing ``NaN`` and ``Infinity``;
* :data:`SURROGATE_ESCAPE` — the only way text that was valid UTF-8 can hold a lone surrogate is a
  ``\\ud800``-style escape: callers check strings only when it matches.

What differs stays with each reader: TUF metadata refuses duplicate members and floats
(:mod:`repo_tool.trust.tufjson`); the manifest keeps members in order for its own checks and bounds
the nesting as serde_json does (:mod:`repo_tool.core.manifest`).  Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONTextError(ValueError):
    """Bytes that are not JSON text serde_json reads; the message says why (no file name)."""


def strict_text(data: bytes) -> str:
    """``data`` decoded as UTF-8, refused if it is not UTF-8 or starts with a byte order mark."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONTextError(f"not valid UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise JSONTextError("unexpected byte order mark at the start of the JSON")
    return text


def reject_constant(name: str) -> Any:
    """``json.loads``'s ``parse_constant``: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON."""
    raise ValueError(f"{name} is not valid JSON")
