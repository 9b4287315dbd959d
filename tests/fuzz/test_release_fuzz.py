"""Release.toml mutated from Bottlerocket's real one (and updog's test copy): refused with one line
naming the file, or parsed to exactly the version and migrations the document holds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core.manifest import parse_migration_key
from repo_tool.errors import ConfigError, RepoToolError
from repo_tool.publish.inputs import load_release

from ..conftest import BOTTLEROCKET, UPDOG_TESTS
from .strategies import assert_clear_error, dump_toml, has_pairs, mutated, outcome, raw_inputs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RELEASE_FILES = [BOTTLEROCKET / "release" / "Release.toml", UPDOG_TESTS / "release.toml"]
RELEASES: list[dict[str, Any]] = [tomllib.loads(p.read_text(encoding="utf-8")) for p in RELEASE_FILES]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("release-fuzz")


def check_release_file(path: Path, doc: Any | None) -> None:
    try:
        release = load_release(str(path))
    except RepoToolError as exc:
        assert_clear_error(exc, str(path))
        outcome(f"refused: {type(exc).__name__}")
        return
    outcome("accepted")
    if doc is None:
        return
    assert not has_pairs(doc), "a Release.toml with a key given twice was accepted"
    assert str(release.version) == doc["version"]
    expected = {parse_migration_key(key, ConfigError): names for key, names in doc["migrations"].items()}
    assert release.migrations == expected


@given(doc=st.sampled_from(RELEASES).flatmap(lambda d: mutated(d, max_ops=4)), tables=st.booleans())
def test_structured_mutations_of_release_toml(workdir: Path, doc: Any, tables: bool) -> None:
    path = workdir / "Release.toml"
    path.write_text(dump_toml(doc, tables), encoding="utf-8", errors="surrogatepass")
    check_release_file(path, doc)


@given(data=raw_inputs([p.read_bytes() for p in RELEASE_FILES]))
def test_raw_release_bytes(workdir: Path, data: bytes) -> None:
    path = workdir / "raw-Release.toml"
    path.write_bytes(data)
    check_release_file(path, None)


def test_the_real_release_files_load_through_the_writer(workdir: Path) -> None:
    for doc in RELEASES:
        for tables in (True, False):
            path = workdir / "real-Release.toml"
            path.write_text(dump_toml(doc, tables), encoding="utf-8")
            check_release_file(path, doc)
            assert load_release(str(path)).migrations
