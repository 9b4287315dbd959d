"""The verifier's opt-in trusted state (a node's --state-dir, tuf-client's metadata dir): the trusted
root never steps back, however a walk ends, and a damaged state is ignored, not a crash."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from repo_tool.errors import RepoToolError, VerificationError
from repo_tool.storage.base import LocalStorage
from repo_tool.storage.directory import DirectoryStore
from repo_tool.storage.transport import NotConnectedError
from repo_tool.trust.verifier import RollbackError, load_repo
from tests.repohelpers import QS, make_quickstart, sign_file, signer


class Source:
    """The quickstart's metadata directory, with one file answered differently."""

    def __init__(self, qs: QS, name: str, answer: str) -> None:
        self.store = LocalStorage(qs.meta)
        self.url = self.store.url
        self.name, self.answer = name, answer

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        if name != self.name:
            return self.store.read(name, limit)
        if self.answer == "missing":
            return None
        if self.answer == "no-connection":
            raise NotConnectedError(f"http://mirror/{name}: connection refused (tried 4 times)")
        return b"{}"  # garbage

    def describe(self, name: str) -> str:
        return self.store.describe(name)


@pytest.fixture
def chain(tmp_path: Path) -> QS:
    """A quickstart whose root goes 1 -> 2 -> 3 (same keys)."""
    qs = make_quickstart(tmp_path / "qs")
    root_key = signer(qs.dir / "keys" / "root.pem")
    signed = json.loads((qs.meta / "1.root.json").read_bytes())["signed"]
    for version in (2, 3):
        signed["version"] = version
        (qs.meta / f"{version}.root.json").write_bytes(sign_file(signed, [root_key]))
    return qs


def _state_root_version(state: Path) -> int:
    return int(json.loads((state / "root.json").read_bytes())["signed"]["version"])


@pytest.mark.parametrize("answer", ["missing", "no-connection"])
def test_a_chain_ending_below_the_trusted_root_is_refused(chain: QS, tmp_path: Path, answer: str) -> None:
    state, shipped, now = tmp_path / "state", (chain.meta / "1.root.json").read_bytes(), time.time_ns()
    load_repo(LocalStorage(chain.meta), shipped, now, state=DirectoryStore(state))
    assert _state_root_version(state) == 3
    with pytest.raises(RollbackError, match=r"root version 2 is older than the trusted root version 3"):
        load_repo(Source(chain, "3.root.json", answer), shipped, now, state=DirectoryStore(state))
    assert _state_root_version(state) == 3  # not stepped back


def test_a_failed_walk_from_an_older_shipped_root_leaves_the_state_root_alone(chain: QS, tmp_path: Path) -> None:
    """The walk from shipped root 1 passes 2 on its way to 3: the state, already at 3, keeps 3 when the
    run fails on 3.root.json, so a later run that hides 3.root.json is still refused."""
    state, shipped, now = tmp_path / "state", (chain.meta / "1.root.json").read_bytes(), time.time_ns()
    load_repo(LocalStorage(chain.meta), shipped, now, state=DirectoryStore(state))
    with pytest.raises(VerificationError):
        load_repo(Source(chain, "3.root.json", "garbage"), shipped, now, state=DirectoryStore(state))
    assert _state_root_version(state) == 3
    with pytest.raises(RollbackError):
        load_repo(Source(chain, "3.root.json", "missing"), shipped, now, state=DirectoryStore(state))


@pytest.mark.parametrize("damage", ["roles", "signature", "bytes"])
def test_a_damaged_state_root_is_ignored(chain: QS, tmp_path: Path, damage: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    raw = json.loads((chain.meta / "3.root.json").read_bytes())
    if damage == "roles":
        raw["signed"]["roles"] = []
    elif damage == "signature":
        raw["signed"]["version"] = 9  # no longer what was signed
    (state / "root.json").write_text("{" if damage == "bytes" else json.dumps(raw))
    repo = load_repo(LocalStorage(chain.meta), (chain.meta / "1.root.json").read_bytes(), time.time_ns(),
                     state=DirectoryStore(state))
    assert repo.roots[-1].version == 3 and _state_root_version(state) == 3


def test_a_state_that_cannot_be_changed_is_a_named_error(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    (tmp_path / "timestamp.json").mkdir()  # a directory where a file should be
    with pytest.raises(RepoToolError, match=r"timestamp\.json: cannot remove"):
        store.remove("timestamp.json")
