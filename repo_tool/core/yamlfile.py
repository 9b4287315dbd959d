"""YAML reading for configuration: safe types only, and duplicate keys are errors (PyYAML keeps the last)."""

from __future__ import annotations

from typing import Any

import yaml

from repo_tool.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: let PyYAML report it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, error: type[ConfigError]) -> Any:
    """Parse YAML; every failure is ``error`` with a one-line message."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {_why(exc)}") from None
    except (ValueError, RecursionError, TypeError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise error(f"invalid YAML: {why}") from None


def _why(exc: yaml.YAMLError) -> str:
    """What is wrong and where (``... (at line L, column C)``, as TOML errors say it), without PyYAML's
    internals (``while parsing a flow node``, ``in "<unicode string>"``, a caret under a quoted line)."""
    if isinstance(exc, yaml.reader.ReaderError):  # no line and column: an offset in the text
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return f"unacceptable character {char!r}: {exc.reason} (at character {exc.position + 1})"
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if not problem:
        problem, mark = getattr(exc, "context", None) or " ".join(str(exc).split()), getattr(exc, "context_mark", None)
    where = f" (at line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"
