"""Strict semver with the semver crate's ordering, build metadata included (SPEC §5.2)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core.semver import Version
from repo_tool.errors import VersionError


@pytest.mark.parametrize(
    "text",
    ["0.0.0", "1.26.1", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7", "1.0.0-x.7.z.92", "1.0.0+20130313144700",
     "1.0.0-beta+exp.sha.5114f85", "1.0.0+001", "18446744073709551615.0.0", "1.0.0-a-b", "1.0.0--"],
)
def test_valid_versions_round_trip(text: str) -> None:
    assert str(Version.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    ["v1.0.0", "1.0", "1", "1.0.0.0", "01.0.0", "1.00.0", "1.0.00", " 1.0.0", "1.0.0 ", "1.0.0-", "1.0.0+",
     "1.0.0-01", "1.0.0-a..b", "1.0.0+a..b", "1.0.0-a_b", "1.0.0+é", "18446744073709551616.0.0", "", "Latest",
     "1.13", "a.b.c", "1.0.0-+x"],
)
def test_invalid_versions(text: str) -> None:
    with pytest.raises(VersionError, match="invalid version"):
        Version.parse(text)


ORDERED = [
    "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
    "1.0.0-rc.1", "1.0.0", "1.0.0+0", "1.0.0+00", "1.0.0+1", "1.0.0+01", "1.0.0+001", "1.0.0+2", "1.0.0+10",
    "1.0.0+a", "1.0.0+a.0", "1.0.0+b", "1.0.1", "1.2.0", "1.10.0", "2.0.0",
]


def test_semver_precedence_then_build_metadata() -> None:
    versions = [Version.parse(v) for v in ORDERED]
    shuffled = versions[1::2] + versions[::2]
    assert sorted(shuffled) == versions
    for lower, higher in itertools.pairwise(versions):
        assert lower < higher
        assert lower != higher


def test_equality_includes_build_metadata() -> None:
    assert Version.parse("1.0.0+a") != Version.parse("1.0.0")
    assert Version.parse("1.0.0+a") == Version.parse("1.0.0+a")
    assert len({Version.parse("1.0.0+a"), Version.parse("1.0.0+a"), Version.parse("1.0.0")}) == 2


identifier = st.from_regex(r"[0-9A-Za-z-]{1,6}", fullmatch=True)
pre_identifier = identifier.filter(lambda s: not (s.isdigit() and len(s) > 1 and s[0] == "0"))
versions = st.builds(
    Version,
    st.integers(0, 2**64 - 1),
    st.integers(0, 1000),
    st.integers(0, 1000),
    st.lists(pre_identifier, max_size=3).map(tuple),
    st.lists(identifier, max_size=3).map(tuple),
)


@given(versions)
def test_parse_is_inverse_of_str(version: Version) -> None:
    assert Version.parse(str(version)) == version


@given(versions, versions, versions)
def test_order_is_total_and_consistent(a: Version, b: Version, c: Version) -> None:
    assert (a < b) + (a == b) + (a > b) == 1
    if a <= b <= c:
        assert a <= c
    assert (a == b) == (hash(a) == hash(b) and str(a) == str(b))
