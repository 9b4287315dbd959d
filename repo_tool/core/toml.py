"""TOML reading: the standard library's tomllib (Python 3.11+), or its backport tomli on 3.10."""

from __future__ import annotations

import sys
from typing import Any

from repo_tool.errors import ConfigError

if sys.version_info >= (3, 11):
    from tomllib import TOMLDecodeError, loads
else:  # pragma: no cover - exercised only on Python 3.10
    from tomli import TOMLDecodeError, loads


def load_toml(text: str, error: type[ConfigError]) -> dict[str, Any]:
    """Parse TOML; every failure (syntax, absurd integers, nesting) is ``error`` with one line."""
    try:
        data: dict[str, Any] = loads(text)
    except TOMLDecodeError as exc:
        raise error(f"invalid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of thousands of digits
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        raise error(f"invalid TOML: {why}") from None
    return data
