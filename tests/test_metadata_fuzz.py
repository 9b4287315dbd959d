"""Hostile but validly signed metadata: the loader answers with a named error or loads, never a crash.

Signatures are made with the repository's real keys after the mutation, so the shape checks behind
the signature check are what gets exercised (a buggy or foreign writer, or a stolen key)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repo_tool.errors import RepoToolError
from repo_tool.signing.signers import KeySigner, load_signer
from repo_tool.trust.metadata import meta_entry
from repo_tool.trust.model import envelope_bytes
from repo_tool.trust.tufjson import canonical
from repo_tool.trust.verifier import load_repo, read_target

from .repohelpers import QS, make_quickstart

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


class MemoryStorage:
    """Just enough of the Storage interface for a load."""

    url = "memory:///"
    writable = False

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def describe(self, name: str) -> str:
        return name

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        return self.files.get(name)

    def size(self, name: str) -> int | None:
        data = self.files.get(name)
        return None if data is None else len(data)

    def child(self, *parts: str) -> MemoryStorage:
        raise NotImplementedError

    def create(self, name: str, data: bytes) -> bool:
        raise NotImplementedError("read-only")

    def put_file(self, name: str, path: Path, size: int, sent: object = None) -> bool:
        raise NotImplementedError("read-only")

    def swap(self, name: str, data: bytes, expected: bytes | None) -> None:
        raise NotImplementedError("read-only")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[QS, dict[str, KeySigner], dict[str, bytes]]:
    qs = make_quickstart(tmp_path_factory.mktemp("fuzz") / "qs")
    signers = {role: load_signer(str(qs.dir / "keys" / f"{role}.pem")) for role in ("snapshot", "targets", "timestamp")}
    files = {p.name: p.read_bytes() for p in qs.meta.iterdir()}
    files.update({p.name: p.read_bytes() for p in qs.targets.iterdir() if p.name.endswith("manifest.json")})
    return qs, signers, files


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if depth < 4 and isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key), depth + 1)
    return found


def _set(value: dict[str, Any], path: tuple[Any, ...], new: Any) -> None:
    node = value
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(role=st.sampled_from(["targets", "snapshot", "timestamp"]), pick=st.integers(0, 10_000), new=JSON,
       delete=st.booleans())
def test_signed_garbage_never_crashes(base: tuple[QS, dict[str, KeySigner], dict[str, bytes]], role: str,
                                      pick: int, new: Any, delete: bool) -> None:
    qs, signers, files = base
    files = dict(files)
    docs = {r: json.loads(files[name])["signed"] for r, name in
            (("timestamp", "timestamp.json"), ("snapshot", "2.snapshot.json"), ("targets", "2.targets.json"))}
    doc = copy.deepcopy(docs[role])
    paths = _paths(doc)
    path = paths[pick % len(paths)]
    if delete:
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
    else:
        _set(doc, path, new)
    # Re-sign the mutated role and re-chain the roles above it, as a key holder could.
    chain = {"targets": ["targets", "snapshot", "timestamp"], "snapshot": ["snapshot", "timestamp"],
             "timestamp": ["timestamp"]}[role]
    raw: dict[str, bytes] = {}
    for current in chain:
        signed = doc if current == role else copy.deepcopy(docs[current])
        if current == "snapshot" and "targets" in raw:
            signed["meta"]["targets.json"] = meta_entry(raw["targets"], 2)
        if current == "timestamp" and "snapshot" in raw:
            signed["meta"]["snapshot.json"] = meta_entry(raw["snapshot"], 2)
        # Signed directly (sign_role itself would refuse some of these shapes).
        data = canonical(signed)
        raw[current] = envelope_bytes(data, [{"keyid": signers[current].keyid, "sig": signers[current].sign_hex(data)}])
    names = {"timestamp": "timestamp.json", "snapshot": "2.snapshot.json", "targets": "2.targets.json"}
    for current, data in raw.items():
        files[names[current]] = data
    storage = MemoryStorage(files)
    try:
        repo = load_repo(storage, qs.root.read_bytes(), 0)
        read_target(repo, MemoryStorage({p.name: p.read_bytes() for p in qs.targets.iterdir()
                                         if p.name.endswith("manifest.json")}), "manifest.json")
    except RepoToolError:
        pass


def test_memory_storage_loads_the_unchanged_repo(base: tuple[QS, dict[str, KeySigner], dict[str, bytes]]) -> None:
    qs, _, files = base
    repo = load_repo(MemoryStorage(files), qs.root.read_bytes(), 0)
    assert repo.targets.version == 2
    assert isinstance(Path(qs.dir), Path)
