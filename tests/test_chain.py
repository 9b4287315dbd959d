"""The migration chain invariant (pure): breaks, and what an edit causes."""

from __future__ import annotations

import copy
import itertools

import pytest

from repo_tool.core.chain import breaks, check_edit, offered
from repo_tool.core.manifest import Images, Manifest
from repo_tool.core.release import parse_release
from repo_tool.core.rollout import offered_regardless
from repo_tool.core.selection import MigrationChain, find_migrations
from repo_tool.core.semver import Version

from .conftest import BOTTLEROCKET

V = Version.parse
VARIANT, ARCH = "aws-k8s-1.28", "x86_64"


def manifest(versions: list[str], steps: dict[tuple[str, str], list[str]], max_version: str | None = None) -> Manifest:
    doc = Manifest()
    for version in versions:
        doc.add_update(V(version), V(max_version) if max_version else None, ARCH, VARIANT, Images("b", "r", "h"))
    doc.migrations = {(V(a), V(b)): names for (a, b), names in steps.items()}
    return doc


def test_a_missing_step_is_a_break_with_the_step_to_add() -> None:
    doc = manifest(["1.0.0", "1.1.0", "1.2.0"], {("1.0.0", "1.1.0"): ["m"]})
    found = breaks(doc)
    assert [(str(b.low), str(b.high), str(b.end)) for b in found] == [("1.0.0", "1.2.0", "1.1.0"),
                                                                      ("1.1.0", "1.2.0", "1.1.0")]
    assert found[0].missing_step == '"(1.1.0, 1.2.0)" = []'
    assert found[0].reason == "Reached end of migration chain at 1.1.0 but target is 1.2.0"


def test_the_whole_real_release_toml_joins_every_version_it_names() -> None:
    release = parse_release((BOTTLEROCKET / "release" / "Release.toml").read_text())
    versions = sorted({v for key in release.migrations for v in key})
    doc = manifest([str(v) for v in versions], {})
    doc.migrations = release.migrations
    assert len(versions) == 83 and breaks(doc) == []


def test_a_backward_key_is_a_break_too() -> None:
    doc = manifest(["1.0.0", "1.1.0"], {("1.0.0", "1.0.0"): []})
    assert "does not move forward" in breaks(doc)[0].reason


def test_publishing_without_the_step_is_caused_by_the_edit() -> None:
    before = manifest(["1.0.0", "1.1.0"], {("1.0.0", "1.1.0"): ["m"]})
    after = copy.deepcopy(before)
    after.add_update(V("1.2.0"), None, ARCH, VARIANT, Images("b", "r", "h"))
    check = check_edit(before, after)
    assert [(str(b.low), str(b.high)) for b in check.caused] == [("1.0.0", "1.2.0"), ("1.1.0", "1.2.0")]
    after.merge_migrations({(V("1.1.0"), V("1.2.0")): []})
    assert check_edit(before, after).caused == []


def test_a_pull_that_sends_nodes_along_a_broken_walk_is_caused_by_the_edit() -> None:
    # Nodes on 1.0.0 take the shortcut to 1.2.0; 1.0.0 and 1.1.0 were never joined.
    before = manifest(["1.0.0", "1.1.0", "1.2.0"], {("1.0.0", "1.2.0"): [], ("1.1.0", "1.2.0"): []})
    assert offered(before, VARIANT, ARCH, V("1.0.0")) == V("1.2.0")
    pulled = copy.deepcopy(before)
    pulled.update_max_version(V("1.1.0"), ARCH, VARIANT)
    assert offered(pulled, VARIANT, ARCH, V("1.0.0")) == V("1.1.0")
    assert [(str(b.low), str(b.high)) for b in check_edit(before, pulled).caused] == [("1.0.0", "1.1.0")]
    removed = copy.deepcopy(before)
    removed.remove_update(VARIANT, ARCH, V("1.2.0"))
    assert [(str(b.low), str(b.high)) for b in check_edit(before, removed).caused] == [("1.0.0", "1.1.0")]
    # Removing 1.0.0 sends nobody anywhere new: the old break is reported, not caused.
    other = copy.deepcopy(before)
    other.remove_update(VARIANT, ARCH, V("1.0.0"))
    check = check_edit(before, other)
    assert check.caused == [] and [(str(b.low), str(b.high)) for b in check.existing] == [("1.0.0", "1.1.0")]


def test_merge_keeps_steps_release_toml_omits_and_warns_on_changed_ones() -> None:
    doc = manifest(["1.0.0"], {("1.0.0", "1.1.0"): ["m"]})
    assert doc.merge_migrations({(V("1.1.0"), V("1.2.0")): []}) == []
    warnings = doc.merge_migrations({(V("1.0.0"), V("1.1.0")): ["n"]})
    assert len(warnings) == 1 and "(1.0.0, 1.1.0) changes from ['m'] to ['n']" in warnings[0]
    assert doc.migrations == {(V("1.0.0"), V("1.1.0")): ["n"], (V("1.1.0"), V("1.2.0")): []}


@pytest.mark.parametrize(("low", "high"), [("0.3.1", "1.26.1"), ("1.0.0", "1.26.1"), ("1.10.0", "1.20.0")])
def test_indexed_walk_equals_find_migrations(low: str, high: str) -> None:
    release = parse_release((BOTTLEROCKET / "release" / "Release.toml").read_text())
    chain = MigrationChain(release.migrations)
    assert chain.names(V(low), V(high)) == find_migrations(V(low), V(high), release.migrations)
    assert chain.names(V(high), V(low)) == chain.names(V(low), V(high))[::-1]
    assert chain.stop(V(low), V(high)) is None


def test_the_initial_wave_is_offered_regardless() -> None:
    assert offered_regardless({}) == 2047
    assert offered_regardless({0: 1, 100: 2}) == 0
    assert offered_regardless({50: 1, 100: 2}) == 50
    assert offered_regardless({5000: 1}) == 2047  # keys above 2048 are never used


def test_checking_a_long_manifest_stays_cheap() -> None:
    versions = [f"1.{i}.0" for i in range(120)]
    doc = manifest(versions, {(a, b): [] for a, b in itertools.pairwise(versions)})
    assert breaks(doc) == []
