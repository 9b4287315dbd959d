"""Property tests over generated manifests and hostile inputs (hypothesis)."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core.instant import MAX_INSTANT, MIN_INSTANT
from repo_tool.core.manifest import Images, Manifest, Update
from repo_tool.core.semver import Version
from repo_tool.errors import ConfigError

from .conftest import UPDOG_TESTS

names = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)
safe_names = st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True)
versions = st.builds(
    Version,
    st.integers(0, 2**64 - 1),
    st.integers(0, 99),
    st.integers(0, 99),
    st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,5}|[1-9][0-9]{0,3}|0", fullmatch=True), max_size=2).map(tuple),
    st.lists(st.from_regex(r"[0-9A-Za-z-]{1,5}", fullmatch=True), max_size=2).map(tuple),
)
waves = st.dictionaries(st.integers(0, 2**32 - 1), st.integers(MIN_INSTANT, MAX_INSTANT), max_size=8)
updates = st.builds(
    Update, names, st.sampled_from(["x86_64", "aarch64"]), versions, versions, waves,
    st.builds(Images, safe_names, safe_names, safe_names),
)
manifests = st.builds(
    Manifest,
    st.lists(updates, max_size=5),
    st.dictionaries(st.tuples(versions, versions), st.lists(safe_names, max_size=3), max_size=6),
)


@given(manifests)
def test_parse_of_serialize_is_identity(manifest: Manifest) -> None:
    data = manifest.to_bytes()
    parsed = Manifest.from_bytes(data)
    assert parsed == manifest
    assert parsed.to_bytes() == data
    assert not data.endswith(b"\n")


@given(manifests)
def test_written_wave_keys_are_numeric_order_and_migrations_string_order(manifest: Manifest) -> None:
    doc = json.loads(manifest.to_bytes())
    for update in doc["updates"]:
        keys = list(update["waves"])
        assert keys == sorted(keys, key=int)
    assert list(doc["migrations"]) == sorted(doc["migrations"])


EXAMPLE = json.loads((UPDOG_TESTS / "example.json").read_bytes())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | names,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(names, children, max_size=3),
    max_leaves=8,
)


@given(st.sampled_from(["variant", "arch", "version", "max_version", "waves", "images"]), json_values)
def test_any_field_value_gives_a_clean_result(field: str, value: object) -> None:
    doc = json.loads(json.dumps(EXAMPLE))
    doc["updates"][0][field] = value
    with contextlib.suppress(ConfigError):
        Manifest.from_bytes(json.dumps(doc))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(ConfigError):
        Manifest.from_bytes(data)


@given(st.dictionaries(names, json_values, max_size=4), st.dictionaries(names, json_values, max_size=4))
def test_arbitrary_waves_and_migrations_never_crash(wave_obj: dict[str, object], migrations: dict[str, object]) -> None:
    doc = json.loads(json.dumps(EXAMPLE))
    doc["updates"][0]["waves"] = wave_obj
    doc["migrations"] = migrations
    with contextlib.suppress(ConfigError):
        Manifest.from_bytes(json.dumps(doc))
