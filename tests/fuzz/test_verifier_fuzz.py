"""Unsigned damage to each role file the verifier reads, and raw bytes in its place.

tests/test_metadata_fuzz.py re-signs what it mutates (a stolen key or a buggy writer); this is the
complement, what anyone on the path can do: the file is changed after signing (anywhere in the
envelope, the signatures included) or replaced by bytes.  The positions are the trusted root a node
ships, the next root of the chain (2.root.json), timestamp.json, and the snapshot and targets files,
which are parsed only when their listing carries no hashes, so a second, validly signed base repo
lists them by version alone.  ``load_repo`` (tough's and standard TUF naming) must answer with a
RepoToolError subclass or load; whatever it accepts re-serialises canonically, parses back equal and
still verifies.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.errors import RepoToolError
from repo_tool.signing.rootfile import root_file_bytes
from repo_tool.signing.signers import load_signer
from repo_tool.trust.metadata import verify_role
from repo_tool.trust.model import RoleFile, parse_role
from repo_tool.trust.tufjson import canonical
from repo_tool.trust.verifier import Naming, Repo, load_repo, read_target

from ..repohelpers import make_quickstart, sign_file
from ..test_metadata_fuzz import MemoryStorage
from .strategies import assert_clear_error, dump_json, mutated, outcome, raw_inputs

TRUSTED = "trusted root"
POSITIONS = (TRUSTED, "2.root.json", "timestamp.json", "2.snapshot.json", "2.targets.json")


@dataclass
class Base:
    trusted: bytes
    files: dict[str, bytes]
    targets: dict[str, bytes]



@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Base]:
    """The quickstart repository plus a valid 2.root.json, as published (hashes in every listing)
    and re-signed with snapshot and targets listed by version only (``hashless``)."""
    qs = make_quickstart(tmp_path_factory.mktemp("verifier-fuzz") / "qs")
    keys = {role: load_signer(str(qs.dir / "keys" / f"{role}.pem"))
            for role in ("root", "snapshot", "targets", "timestamp")}
    files = {p.name: p.read_bytes() for p in qs.meta.iterdir()}
    root = json.loads(files["1.root.json"])["signed"]
    root2 = {**copy.deepcopy(root), "version": 2}
    data = canonical(root2)
    files["2.root.json"] = root_file_bytes(root2, [{"keyid": keys["root"].keyid, "sig": keys["root"].sign_hex(data)}])
    targets = {p.name: p.read_bytes() for p in qs.targets.iterdir() if p.name.endswith("manifest.json")}
    hashless = dict(files)
    snapshot = json.loads(files["2.snapshot.json"])["signed"]
    snapshot["meta"]["targets.json"] = {"version": 2}
    hashless["2.snapshot.json"] = sign_file(snapshot, [keys["snapshot"]])
    timestamp = json.loads(files["timestamp.json"])["signed"]
    timestamp["meta"]["snapshot.json"] = {"version": 2}
    hashless["timestamp.json"] = sign_file(timestamp, [keys["timestamp"]])
    trusted = qs.root.read_bytes()
    for variant in (files, hashless):  # both load as they are
        assert load_repo(MemoryStorage(variant), trusted, time.time_ns()).root.version == 2
    # Sanity of the hashless base: with it, a changed snapshot or targets is parsed (and refused by
    # its signature), not stopped by the listing's hash.
    for name in ("2.snapshot.json", "2.targets.json"):
        damaged = {**hashless, name: hashless[name].replace(b'"version":2', b'"version":3', 1)}
        with pytest.raises(RepoToolError, match=r"signature threshold not met|version 3"):
            load_repo(MemoryStorage(damaged), trusted, time.time_ns())
    return {False: Base(trusted, files, targets), True: Base(trusted, hashless, targets)}


def original(base: Base, position: str) -> bytes:
    return base.trusted if position == TRUSTED else base.files[position]


def check_load(base: Base, position: str, data: bytes, naming: Naming) -> None:
    trusted = data if position == TRUSTED else base.trusted
    files = base.files if position == TRUSTED else {**base.files, position: data}
    try:
        repo = load_repo(MemoryStorage(files), trusted, time.time_ns(), naming=naming)
        target = repo.find("manifest.json")
        if target is not None:
            read_target(repo, MemoryStorage(base.targets), "manifest.json")
    except RepoToolError as exc:
        assert_clear_error(exc)
        outcome(f"refused: {type(exc).__name__}")
        return
    outcome(f"accepted ({'unchanged' if data == original(base, position) else 'changed'})")
    check_reserialises(repo)


def check_reserialises(repo: Repo) -> None:
    """Accepted metadata, written back, parses to the same content, whose canonical form (what is
    signed) is unchanged, and still verifies."""
    previous: RoleFile | None = None
    for root in repo.roots:
        again = reserialised(root)
        verify_role(again, again.signed, "re-serialised root (self-signed)")
        if previous is not None:
            verify_role(again, previous.signed, "re-serialised root (signed by the previous root)")
        previous = root
    for role_file in (repo.timestamp, repo.snapshot, repo.targets):
        verify_role(reserialised(role_file), repo.root.signed, f"re-serialised {role_file.role}")


def reserialised(role_file: RoleFile) -> RoleFile:
    """Written back as JSON (not in canonical form: OLPC canonical JSON leaves control characters
    unescaped, so it is not always JSON; it is what is signed, not a file format)."""
    data = json.dumps({"signed": role_file.signed, "signatures": role_file.signatures}).encode()
    again = parse_role(data, role_file.role, f"re-serialised {role_file.role}")
    assert again.signed == role_file.signed and again.signatures == role_file.signatures
    assert canonical(again.signed) == canonical(role_file.signed)
    return again


positions = st.sampled_from(POSITIONS)
namings: st.SearchStrategy[Naming] = st.sampled_from(["tough", "tuf"])


@given(position=positions, hashless=st.booleans(), naming=namings, data=st.data())
def test_unsigned_structured_mutations(bases: dict[bool, Base], position: str, hashless: bool, naming: Naming,
                                       data: st.DataObject) -> None:
    base = bases[hashless]
    envelope = json.loads(original(base, position))
    doc = data.draw(mutated(envelope, max_ops=3), label="mutated envelope")
    check_load(base, position, dump_json(doc).encode("utf-8", "surrogatepass"), naming)


@given(position=positions, hashless=st.booleans(), naming=namings, data=st.data())
def test_raw_bytes_at_each_position(bases: dict[bool, Base], position: str, hashless: bool, naming: Naming,
                                    data: st.DataObject) -> None:
    base = bases[hashless]
    check_load(base, position, data.draw(raw_inputs([original(base, position)]), label="bytes"), naming)


@pytest.mark.parametrize("field", ["scheme", "keytype"])
@pytest.mark.parametrize("position", [TRUSTED, "2.root.json"])
def test_a_key_entry_with_a_list_for_its_scheme_is_refused(bases: dict[bool, Base], field: str,
                                                           position: str) -> None:
    """Found by the fuzzer: ``"scheme": []`` in a root's key entry was a TypeError (unhashable list)."""
    base = bases[False]
    envelope = json.loads(original(base, position))
    keyid = next(iter(envelope["signed"]["keys"]))
    envelope["signed"]["keys"][keyid][field] = []
    with pytest.raises(RepoToolError, match=f"key {keyid}: key type") as info:
        load_repo(MemoryStorage(base.files if position == TRUSTED else {**base.files, position: json.dumps(envelope)
                                                                         .encode()}),
                  json.dumps(envelope).encode() if position == TRUSTED else base.trusted, time.time_ns())
    assert_clear_error(info.value)
