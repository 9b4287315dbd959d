"""JSON as TUF metadata needs it: strict reading and canonical writing (SPEC §3.1).

* :func:`loads` parses like serde_json into plain dicts and refuses what tough
  refuses at the JSON level: duplicate object members, NaN/Infinity, a BOM,
  invalid UTF-8, lone surrogates.
  :func:`loads_canonical` is the same parse, faster for input already in canonical form (what
  this tool writes): see its docstring for why it is exactly as strict.
* :func:`canonical` produces the OLPC canonical form tough signs and verifies:
  members sorted by their *quoted serialized bytes* (olpc-cjson), no
  whitespace, only ``"`` and ``\\`` escaped, integers only.

The canonical writer takes a fast path through the C JSON encoder and checks
that the result is already canonical (no escapes were needed and no member name
contains a byte that sorts below ``"``); only odd input walks the tree in Python.
"""

from __future__ import annotations

import json
import re
from typing import Any

from repo_tool.core.jsontext import SURROGATE_ESCAPE, JSONTextError, reject_constant, strict_text
from repo_tool.errors import VerificationError

_LOW_NAME_BYTE = re.compile(r'[\x00-\x21]')


class JSONFormatError(VerificationError):
    """Bytes that are not the JSON a TUF client accepts."""


def _pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate member {key!r}")
            seen.add(key)
    return result


def _reject_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer (TUF metadata has no floats)")


def loads(data: bytes, what: str = "JSON") -> Any:
    """Parse ``data`` strictly; raise :class:`JSONFormatError` naming ``what``."""
    try:
        text = strict_text(data)
    except JSONTextError as exc:
        raise JSONFormatError(f"{what}: {exc}") from None
    try:
        value = json.loads(
            text, object_pairs_hook=_pairs_to_dict, parse_constant=reject_constant, parse_float=_reject_float
        )
    except ValueError as exc:
        raise JSONFormatError(f"{what}: invalid JSON: {exc}") from None
    except RecursionError:
        raise JSONFormatError(f"{what}: invalid JSON: nested too deeply") from None
    if SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JSONFormatError(f"{what}: invalid JSON: lone surrogate in a string") from None
    return value


def loads_plain(data: bytes) -> Any:
    """Parse with the C decoder's own dict building: floats, NaN/Infinity, a BOM, invalid UTF-8 and
    malformed JSON are refused as :func:`loads` refuses them, but a duplicate member is NOT (the
    last one wins).  Returns None for anything refused (the caller then runs :func:`loads` for its
    message).  Only for callers that prove the absence of duplicates another way."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=reject_constant, parse_float=_reject_float)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def loads_canonical(data: bytes, what: str = "JSON") -> tuple[Any, bytes | None]:
    """:func:`loads` (same value, same refusals, same messages), and ``canonical(value)`` when
    ``data`` is exactly that (optionally with one final newline), else None.

    Canonical input takes a fast path: :func:`loads_plain` (no per-object duplicate hook), then one
    canonical encode compared with ``data``.  That is exactly as strict: the canonical encoding of
    a parsed value holds no duplicate member (a dict has each name once), so bytes equal to it hold
    none either; and without a backslash in ``data`` there is no escape, hence no lone surrogate.
    Any other input (or any refusal) goes through :func:`loads`."""
    body = data[:-1] if data.endswith(b"\n") else data
    if b"\n" not in body and b"\\" not in body:  # pretty-printed or escaped text: no fast path
        value = loads_plain(body)
        if value is not None:  # (a document that is just ``null`` takes the strict path)
            try:
                encoded = canonical(value)
            except JSONFormatError:
                encoded = None
            if encoded == body:
                return value, encoded
    return loads(data, what), None


# --- canonical writing -------------------------------------------------------


def canonical(value: Any) -> bytes:
    """OLPC canonical JSON of ``value`` with tough's member order."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise JSONFormatError(f"cannot encode canonical JSON: {exc}") from None
    # Only names holding a space or '!' can sort differently (control characters are escaped, so
    # they take the slow path anyway); most documents hold neither and skip the walk.
    if "\\" not in text and ((" " not in text and "!" not in text) or not _needs_byte_order(value)):
        return text.encode("utf-8")
    return "".join(_slow(value)).encode("utf-8")


def _needs_byte_order(value: Any) -> bool:
    """True if some member name holds a character below ``"``: only then can Python's
    code-point sort differ from olpc-cjson's sort of quoted names.  Floats are refused."""
    if not isinstance(value, (dict, list)):
        return isinstance(value, float)  # the slow writer refuses it
    stack = [value]
    while stack:
        node = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict):
            for key in node:
                if _LOW_NAME_BYTE.search(key):
                    return True
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append(child)
            elif isinstance(child, float):
                raise JSONFormatError(f"cannot encode canonical JSON: float {child!r}")
    return False


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _slow(value: Any) -> list[str]:
    out: list[str] = []

    def emit(node: Any) -> None:
        if node is None:
            out.append("null")
        elif node is True:
            out.append("true")
        elif node is False:
            out.append("false")
        elif isinstance(node, int):
            out.append(str(node))
        elif isinstance(node, str):
            out.append(_quote(node))
        elif isinstance(node, list):
            out.append("[")
            for i, item in enumerate(node):
                if i:
                    out.append(",")
                emit(item)
            out.append("]")
        elif isinstance(node, dict):
            out.append("{")
            quoted = sorted(((_quote(k), v) for k, v in node.items()), key=lambda kv: kv[0].encode("utf-8"))
            for i, (key, item) in enumerate(quoted):
                if i:
                    out.append(",")
                out.append(key)
                out.append(":")
                emit(item)
            out.append("}")
        else:
            raise JSONFormatError(f"cannot encode canonical JSON: {type(node).__name__} {node!r}")

    emit(value)
    return out


def pretty(value: Any) -> bytes:
    """Human-readable JSON (2-space indent, sorted members, trailing newline)."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
