"""Strategies shared by the fuzz tests: structured mutations of real documents and raw bytes.

A *structured* mutation keeps a real document's shape and breaks it the way a person or a buggy
writer would: a member dropped, renamed or given twice, a value of the wrong type, an integer past
its range, a list reordered.  The mutated document is then written back out (JSON, TOML or YAML) so
the parser under test sees text.  *Raw* inputs are random bytes and byte-level edits of the real
file (truncation, flipped and inserted bytes), for the layers below the structure.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
from typing import Any

import yaml
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

# Values a parser of these formats is most likely to mishandle (versions, instants, offsets, seeds).
INTERESTING_STRINGS = (
    "", " ", "0", "-1", "+1", "1.0.0", "v1.0.0", "01.0.0", "1.0", "1.0.0-", "1.0.0+", "1.0.0-rc.1+build.5",
    "1.0.0-01", "18446744073709551615.0.0", "18446744073709551616.0.0", "(1.0.0, 1.1.0)", "(1.1.0, 1.0.0)",
    "(1.0.0,1.1.0)", "(1.0.0, 1.1.0", "2024-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "9999-12-31T23:59:59Z",
    "10000-01-01T00:00:00Z", "262143-12-31T23:59:59.999999999Z", "-262144-01-01T00:00:00Z",
    "2024-01-01T00:00:00+25:00", "2024-01-01T00:00:00.1234567891Z", "2024-01-01 00:00:00Z", "1 hour",
    "4 hours", "0 minutes", "99999999999999999999 days", "4294967296 weeks", "-1 hours", "1.5 days",
    "in 3 days", "1 fortnight", "NaN", "inf", "\x00", "\t", "\u2028", "\u00e9", "e\u0301", "\U0001f600",
    "a" * 300, "9" * 400, "latest", "x86_64", "aarch64", "aws-k8s-1.28", "sha256", "0" * 64, "g" * 64,
    "4294967295", "4294967296", "2047", "2048",
)
INTERESTING_INTS = (0, 1, -1, 99, 100, 101, 2047, 2048, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63, 2**64 - 1, 2**64,
                    -(2**63) - 1, 10**30)

text = st.text(max_size=12)
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.sampled_from(INTERESTING_INTS)
           | st.floats() | text | st.sampled_from(INTERESTING_STRINGS))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=6,
)


class Pairs(list[tuple[str, Any]]):
    """A JSON object written member by member, so a member can be given twice."""


Path_ = tuple[str | int, ...]


def json_paths(value: Any, prefix: Path_ = (), depth: int = 0) -> list[Path_]:
    """Every member and element path in ``value`` (the root itself excluded), to depth 6."""
    found: list[Path_] = [prefix] if prefix else []
    if depth >= 6:
        return found
    if isinstance(value, dict):
        for key, child in value.items():
            found += json_paths(child, (*prefix, key), depth + 1)
    elif isinstance(value, list) and not isinstance(value, Pairs):
        for index, child in enumerate(value):
            found += json_paths(child, (*prefix, index), depth + 1)
    return found


def _parent(doc: Any, path: Path_) -> Any:
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def retyped(old: Any) -> st.SearchStrategy[Any]:
    """Values of another type built from ``old`` (a number as a string, a string in a list ...)."""
    options: list[Any] = [None, True, [old], {"value": old}, json.dumps(old), 1.5, -0.0, math.inf]
    if isinstance(old, str):
        options += [old.upper(), old + " ", " " + old, old[:-1], old * 2]
        stripped = old.strip()
        if stripped.lstrip("-").isdigit() and len(stripped) < 30:
            options.append(int(stripped))
    if isinstance(old, int) and not isinstance(old, bool):
        options += [str(old), float(old), old + 1, old - 1, -old, old * 2**32, bool(old)]
    if isinstance(old, list):
        options += [old[:1], old[::-1], old + old, {str(i): v for i, v in enumerate(old)}]
    if isinstance(old, dict):
        options += [list(old.values()), list(old.keys()), {}]
    return st.sampled_from(options)


OPS = ("delete", "replace", "retype", "overflow", "interesting", "duplicate", "rename", "reorder", "insert")


@st.composite
def mutated(draw: st.DrawFn, base: Any, max_ops: int = 3) -> Any:
    """``base`` (parsed JSON/TOML/YAML data) with 1..``max_ops`` structured mutations at random paths."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_ops))):
        paths = json_paths(doc)
        if not paths:
            break
        shallow = [p for p in paths if len(p) <= 2]  # half the time near the top (version, waves ...)
        path = draw(st.sampled_from(shallow) | st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        if isinstance(parent, Pairs):  # already duplicated: leave it as it is
            continue
        op = draw(st.sampled_from(OPS))
        old = parent[key]
        if isinstance(old, Pairs) and op not in ("delete", "replace", "overflow", "interesting"):
            continue  # a member list stays a well-formed member list
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(json_values)
        elif op == "retype":
            parent[key] = draw(retyped(old))
        elif op == "overflow":
            parent[key] = draw(st.sampled_from(INTERESTING_INTS) | st.sampled_from(INTERESTING_INTS).map(str))
        elif op == "interesting":
            parent[key] = draw(st.sampled_from(INTERESTING_STRINGS))
        elif op == "duplicate" and isinstance(parent, dict):
            pairs = Pairs(parent.items())
            again = (str(key), draw(st.just(old) | json_values))
            pairs.insert(draw(st.integers(0, len(pairs))), again)
            grand = _parent(doc, path[:-1]) if len(path) > 1 else None
            if grand is None:
                continue  # the top level stays a plain object (every writer needs one)
            grand[path[-2]] = pairs
        elif op == "rename" and isinstance(parent, dict):
            name = str(key)
            new_key = draw(st.sampled_from([name.upper(), name + " ", " " + name, name[:-1], name * 2, ""]) | text)
            parent[new_key] = parent.pop(key)
        elif op == "reorder":
            if isinstance(old, list) and len(old) > 1:
                parent[key] = draw(st.permutations(old))
            elif isinstance(old, dict) and len(old) > 1:
                parent[key] = dict(draw(st.permutations(list(old.items()))))
        elif op == "insert":
            if isinstance(old, list):
                old.insert(draw(st.integers(0, len(old))), draw(json_values | st.just(copy.deepcopy(old[:1]))))
            elif isinstance(old, dict):
                old[draw(text)] = draw(json_values)
    return doc


def duplicates(value: Any, path: Path_ = ()) -> list[tuple[Path_, str]]:
    """Each member given twice: (the path of its object, the member name)."""
    found: list[tuple[Path_, str]] = []
    if isinstance(value, Pairs):
        names = [str(k) for k, _ in value]
        found += [(path, name) for name in sorted(set(names)) if names.count(name) > 1]
        for key, child in value:
            found += duplicates(child, (*path, key))
    elif isinstance(value, dict):
        for key, child in value.items():
            found += duplicates(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += duplicates(child, (*path, index))
    return found


def plain(value: Any) -> Any:
    """The document as a reader that keeps the last of a repeated member sees it."""
    if isinstance(value, Pairs):
        return {str(k): plain(v) for k, v in value}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def has_pairs(value: Any) -> bool:
    if isinstance(value, Pairs):
        return True
    if isinstance(value, dict):
        return any(has_pairs(v) for v in value.values())
    if isinstance(value, list):
        return any(has_pairs(v) for v in value)
    return False


# --- writers ---------------------------------------------------------------------------------


def dump_json(value: Any, indent: int | None = None, ascii_only: bool = False) -> str:
    """JSON text of ``value`` (``Pairs`` written member by member; NaN/Infinity as Python writes them)."""
    if isinstance(value, Pairs):
        members = [f"{json.dumps(str(k), ensure_ascii=ascii_only)}: {dump_json(v, indent, ascii_only)}"
                   for k, v in value]
        return "{" + ", ".join(members) + "}"
    if isinstance(value, dict):
        return dump_json(Pairs(value.items()), indent, ascii_only)
    if isinstance(value, list):
        return "[" + ", ".join(dump_json(v, indent, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def toml_string(value: str) -> str:
    out = ['"']
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F or 0xD800 <= ord(char) <= 0xDFFF:
            out.append(f"\\u{ord(char):04X}" if ord(char) <= 0xFFFF else char)
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


TOML_DATETIME = datetime.datetime(1979, 5, 27, 7, 32, tzinfo=datetime.timezone.utc)


def toml_value(value: Any) -> str:
    """An inline TOML value (TOML has no null: None becomes a datetime, a type no field here takes)."""
    if value is None:
        return TOML_DATETIME.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, Pairs):
        return "{" + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return toml_value(Pairs(value.items()))
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return toml_string(str(value))


def dump_toml(doc: Any, tables: bool = True) -> str:
    """A TOML document: top-level scalars as ``key = value``; with ``tables``, a list of tables as
    ``[[key]]`` blocks and a table as a ``[key]`` block (the forms people write)."""
    if not isinstance(doc, dict):
        return f"value = {toml_value(doc)}\n"
    head: list[str] = []
    blocks: list[str] = []
    for key, value in doc.items():
        name = toml_string(str(key))
        if tables and isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for entry in value:
                blocks.append(f"[[{name}]]\n" + "".join(f"{toml_string(str(k))} = {toml_value(v)}\n"
                                                        for k, v in entry.items()))
        elif tables and isinstance(value, dict) and not isinstance(value, Pairs):
            blocks.append(f"[{name}]\n" + "".join(f"{toml_string(str(k))} = {toml_value(v)}\n"
                                                  for k, v in value.items()))
        else:
            head.append(f"{name} = {toml_value(value)}\n")
    return "".join(head) + "\n".join(blocks)


def dump_yaml(doc: Any, block: bool) -> str:
    """YAML: block style through PyYAML, or flow style (JSON is YAML) when asked or when a member repeats."""
    if block and not has_pairs(doc):
        try:
            return str(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        except yaml.YAMLError:
            pass
    return dump_json(doc)


# --- raw bytes -------------------------------------------------------------------------------


@st.composite
def byte_edits(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with a few byte-level edits: truncation, flips, insertions, deletions, repeats."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("truncate", "flip", "insert", "delete", "repeat")))
        at = draw(st.integers(0, len(data)))
        if op == "truncate":
            del data[at:]
        elif op == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(
                [b'"', b"{", b"[", b"]", b"}", b",", b"\\", b"\xff", b"\xc3", b"\n", b"=", b"'", b"#", b":", b"\x00"]))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif op == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
    return bytes(data)


def raw_inputs(bases: list[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, random text, or byte edits of one of the real files."""
    return (st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
            | st.sampled_from(bases).flatmap(byte_edits))


# --- the property ------------------------------------------------------------------------------


def assert_clear_error(exc: BaseException, *needles: str, one_of: tuple[str, ...] = ()) -> None:
    """A RepoToolError whose one-line message names what is at fault (every one of ``needles``, and
    one of ``one_of`` if given), with exit code 1 or 2."""
    from repo_tool.errors import RepoToolError

    assert isinstance(exc, RepoToolError), repr(exc)
    assert exc.exit_code in (1, 2), exc.exit_code
    message = str(exc)
    assert message.strip(), "empty error message"
    assert "\n" not in message and "\r" not in message, f"error message is not one line: {message!r}"
    assert "Traceback" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    assert not one_of or any(name in message for name in one_of), f"none of {one_of} in {message!r}"


def outcome(name: str) -> None:
    """Count an outcome in hypothesis' statistics (``--hypothesis-show-statistics``)."""
    if currently_in_test_context():
        event(name)
