"""``trust.lines``: checking many names or digests joined gives the same answer as checking each alone."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.trust.lines import all_match, lines_of
from repo_tool.trust.model import SHA256_HEX, SHA256_HEX_LOWER
from repo_tool.trust.rules import SAFE_NAME

# Texts near the classes' edges: hex digits of both cases, name characters, separators, non-ASCII
# digits and letters, control characters, the line break itself.
ALPHABET = "0123456789abcdefABCDEFgz._-/ \n\r\t\x00é٣Ｆ"
TEXT = st.one_of(st.text(ALPHABET, max_size=70), st.text("0123456789abcdefABCDEF", min_size=63, max_size=65))


@pytest.mark.parametrize("pattern", [SAFE_NAME, SHA256_HEX, SHA256_HEX_LOWER], ids=lambda p: p.pattern)
@given(texts=st.lists(TEXT, min_size=1, max_size=6))
def test_joined_check_equals_each_alone(pattern: re.Pattern[str], texts: list[str]) -> None:
    assert all_match(lines_of(pattern), texts) == all(pattern.fullmatch(text) for text in texts)


@pytest.mark.parametrize("source", [r"[^a]+", r"[a-z]+x", r"(?:ab)+", r"[\n-~]+", r"[a-z]*"])
def test_a_pattern_it_cannot_check_joined_is_refused(source: str) -> None:
    """Found in review: a class that could match the line break matched across the joins."""
    with pytest.raises(ValueError, match="one class of ASCII characters repeated"):
        lines_of(re.compile(source))
