"""manifest.json: structured mutations of Bottlerocket's real manifests (a member dropped, renamed,
given twice or retyped at a random JSON path, numbers past their range, lists reordered) and byte
edits of them.  Each one is refused with one line naming the field, or parses to a manifest that
is what the document says and round-trips byte for byte.

(tests/test_properties.py generates manifests from the model and replaces whole update fields;
this starts from the real files and reaches every path, migrations and nested members included.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core.manifest import Manifest, parse_migration_key
from repo_tool.errors import ConfigError, RepoToolError
from repo_tool.publish.inputs import load_manifest

from ..conftest import MANIFESTS
from .strategies import assert_clear_error, dump_json, duplicates, mutated, outcome, plain, raw_inputs

MANIFEST_FILES = sorted(MANIFESTS.glob("*/*.json"))
DOCUMENTS: list[Any] = [json.loads(p.read_bytes()) for p in MANIFEST_FILES]
# The members of each struct, by the depth of its path: the manifest, an update, its images.
KNOWN = {0: ("updates", "migrations"), 2: ("variant", "arch", "version", "max_version", "waves", "images"),
         3: ("boot", "root", "hash")}


def check_manifest_bytes(data: bytes, doc: Any | None, path: Path) -> None:
    path.write_bytes(data)
    try:
        manifest = load_manifest(str(path))  # the CLI's reader: file name in front of every error
    except RepoToolError as exc:
        assert_clear_error(exc, str(path))
        outcome(f"refused: {type(exc).__name__}")
        return
    outcome("accepted")
    assert Manifest.from_bytes(data) == manifest
    # A correct result round-trips: the canonical bytes parse to the same manifest and are stable.
    again = Manifest.from_bytes(manifest.to_bytes())
    assert again == manifest
    assert again.to_bytes() == manifest.to_bytes()
    if doc is not None:
        for where, name in duplicates(doc):  # serde: unknown members are skipped, even twice
            assert where[-1:] not in (("waves",), ("migrations",)) and name not in KNOWN.get(len(where), ()), (
                f"a manifest giving {name!r} twice at {where} was accepted")
        check_against_document(manifest, plain(doc))


def check_against_document(manifest: Manifest, doc: dict[str, Any]) -> None:
    """What was accepted is what the document says (strings exactly; wave bounds as u32 keys)."""
    assert len(manifest.updates) == len(doc["updates"])
    for update, entry in zip(manifest.updates, doc["updates"]):
        assert (update.variant, update.arch) == (entry["variant"], entry["arch"])
        assert (str(update.version), str(update.max_version)) == (entry["version"], entry["max_version"])
        assert (update.images.boot, update.images.root, update.images.hash) == (
            entry["images"]["boot"], entry["images"]["root"], entry["images"]["hash"])
        assert set(update.waves) == {int(key) for key in entry["waves"]}
        assert all(0 <= key < 2**32 for key in update.waves)
    expected = {parse_migration_key(key, ConfigError): names for key, names in doc["migrations"].items()}
    assert manifest.migrations == expected


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("manifest-fuzz")


@given(doc=st.sampled_from(DOCUMENTS).flatmap(lambda d: mutated(d, max_ops=4)), indent=st.sampled_from([None, 2]),
       ascii_only=st.booleans())
def test_structured_mutations_of_real_manifests(workdir: Path, doc: Any, indent: int | None, ascii_only: bool) -> None:
    text = dump_json(doc, indent, ascii_only)
    check_manifest_bytes(text.encode("utf-8", "surrogatepass"), doc, workdir / "manifest.json")


@given(data=raw_inputs([p.read_bytes() for p in MANIFEST_FILES]))
def test_raw_manifest_bytes(workdir: Path, data: bytes) -> None:
    check_manifest_bytes(data, None, workdir / "raw.json")


def test_the_real_manifests_load_through_the_writer(workdir: Path) -> None:
    """The JSON writer above is faithful: unmutated, the good upstream manifests load as written."""
    loaded = 0
    for doc, source in zip(DOCUMENTS, MANIFEST_FILES):
        if source.name in ("bad-bound.json", "duplicate-bound.json"):
            continue
        check_manifest_bytes(dump_json(doc).encode(), doc, workdir / "real.json")
        loaded += 1
    assert loaded >= 8


@pytest.mark.parametrize("key", ["\r", "(1.0.0,\n1.1.0)", "(1.0.0, 1.1.0\x1b[2J)"])
def test_a_migration_key_with_control_characters_is_a_one_line_error(workdir: Path, key: str) -> None:
    """Found by the fuzzer: the upstream message "Could not parse OS versions: <key>" quoted the key
    as it was, so a line break in it broke the line."""
    doc = {"updates": [], "migrations": {key: []}}
    check_manifest_bytes(json.dumps(doc).encode(), doc, workdir / "control.json")
    with pytest.raises(RepoToolError, match="Could not parse OS versions") as info:
        Manifest.from_bytes(json.dumps(doc))
    assert "\\" in str(info.value)
