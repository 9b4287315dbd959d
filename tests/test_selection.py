"""Update selection and migration paths (SPEC §8, §11.3, §11.4)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from repo_tool.core.instant import NANOS_PER_DAY, CivilTime
from repo_tool.core.manifest import Images, Manifest, Update
from repo_tool.core.release import parse_release
from repo_tool.core.selection import Host, Overrides, find_migrations, parse_version_lock, retrieve_list, select
from repo_tool.core.semver import Version
from repo_tool.errors import ConfigError, MigrationError, SeedError

from .conftest import MANIFESTS, UPDOG_TESTS

V = Version.parse
NOW = CivilTime(2026, 11, 21).instant()
EKS = "bottlerocket-aws-eks"


def load(name: str) -> Manifest:
    return Manifest.from_bytes((UPDOG_TESTS / name).read_bytes())


def choose(manifest: Manifest, current: str, variant: str = EKS, seed: int = 123, **overrides: Any) -> str | None:
    result = select(manifest, Host(variant, "x86_64", V(current), seed), NOW, Overrides(**overrides))
    return None if result.update is None else str(result.update.version)


def test_regret_version_above_max_is_never_offered() -> None:  # §11.4 #1
    result = select(load("regret.json"), Host(EKS, "x86_64", V("1.18.0"), 1), NOW)
    assert result.update is None
    assert result.considered[0].why == "version 1.25.0 is above its max_version 1.20.0"


def test_host_above_max_version_is_offered_an_older_update() -> None:  # §11.4 #2
    result = select(load("example_3_x86_64.json"), Host("aws-k8s-1.15", "x86_64", V("0.1.3"), 1487), NOW)
    assert result.update is not None and str(result.update.version) == "0.1.2"
    assert result.downgrade
    assert result.to_json_obj()["downgrade"] is True


def test_multiple_picks_highest_applicable() -> None:  # §11.4 #3
    result = select(load("multiple_x86_64.json"), Host(EKS, "x86_64", V("1.10.0"), 123), NOW)
    assert result.update is not None and str(result.update.version) == "1.15.0"
    assert [str(u.version) for u in result.applicable] == ["1.15.0", "1.13.0"]
    whys = [c.why for c in result.considered]
    assert whys[1] == "version 1.25.0 is above its max_version 1.20.0"
    assert whys[3] == "arch aarch64 is not the host's arch x86_64"
    assert "last wave" in whys[0]


def test_forced_image() -> None:  # §11.4 #4
    assert choose(load("multiple_x86_64.json"), "1.10.0", force_version=V("1.13.0")) == "1.13.0"
    assert choose(load("multiple_x86_64.json"), "1.10.0", force_version=V("1.25.0")) is None
    # version_lock is ignored when --image is given, even one that would not parse (updog never reads it)
    assert choose(load("multiple_x86_64.json"), "1.10.0", force_version=V("1.13.0"), version_lock="1.15.0") == "1.13.0"
    assert choose(load("multiple_x86_64.json"), "1.10.0", force_version=V("1.13.0"), version_lock="1.13") == "1.13.0"


@pytest.mark.parametrize(("lock", "expected"), [("v1.13.0", "1.13.0"), ("1.13.0", "1.13.0"), ("1.10.0", None),
                                                ("1.99.0", None), ("latest", "1.15.0")])
def test_version_lock(lock: str, expected: str | None) -> None:  # §11.4 #5
    assert choose(load("multiple_x86_64.json"), "1.10.0", version_lock=lock) == expected


@pytest.mark.parametrize("lock", ["1.13", "Latest", "vv1.13.0", "LATEST"])
def test_bad_version_lock(lock: str) -> None:
    with pytest.raises(ConfigError, match=f"Bad version string '{lock}' in config"):
        parse_version_lock(lock)
    with pytest.raises(ConfigError):
        choose(load("multiple_x86_64.json"), "1.10.0", version_lock=lock)


def test_waves_decide_and_ignore_waves_overrides() -> None:  # §11.4 #6
    far = CivilTime(2999, 1, 1).instant()
    update = Update("v", "x86_64", V("1.1.0"), V("1.1.0"), {0: far}, Images("b", "r", "h"))
    manifest = Manifest([update], {})

    def pick(seed: int, ignore: bool = False) -> str | None:
        return choose(manifest, "1.0.0", variant="v", seed=seed, ignore_waves=ignore)

    assert pick(0) == "1.1.0"
    assert pick(1) is None
    assert pick(1, ignore=True) == "1.1.0"
    result = select(manifest, Host("v", "x86_64", V("1.0.0"), 1), NOW)
    assert result.considered[0].why.startswith("wave not reached")
    assert result.considered[0].ready_at == far


def test_ties_keep_manifest_order() -> None:
    images = Images("b", "r", "h")
    a = Update("v", "x86_64", V("1.1.0"), V("2.0.0"), {}, images)
    b = Update("v", "x86_64", V("1.1.0"), V("2.0.0"), {}, Images("b2", "r2", "h2"))
    result = select(Manifest([a, b], {}), Host("v", "x86_64", V("1.0.0"), 5), NOW)
    assert result.update is a


def test_seed_checked_even_without_waves() -> None:
    with pytest.raises(SeedError):
        select(Manifest(), Host("v", "x86_64", V("1.0.0"), 2048), NOW)


def test_nothing_newer() -> None:
    result = select(load("multiple_x86_64.json"), Host(EKS, "x86_64", V("1.15.0"), 1), NOW)
    assert result.update is None and "no applicable update is newer" in result.decision
    assert select(load("multiple_x86_64.json"), Host("other", "x86_64", V("1.0.0"), 1), NOW).update is None


def test_wave_progress_over_time() -> None:
    manifest = load("example.json")  # waves 0 -> 2019-10-06, 500 -> 10-07, 1024 -> 10-08
    start = CivilTime(2019, 10, 6, 15).instant()
    before = select(manifest, Host(EKS, "x86_64", V("1.12.0"), 700), start)
    after = select(manifest, Host(EKS, "x86_64", V("1.12.0"), 700), start + 2 * NANOS_PER_DAY)
    assert before.update is None and after.update is not None


MIGRATIONS = Manifest.from_bytes((MANIFESTS / "update_metadata-tests" / "migrations.json").read_bytes()).migrations


def test_migrations_forward_takes_shortcut() -> None:  # §11.3 #1
    assert find_migrations(V("1.0.0"), V("1.5.0"), MIGRATIONS) == [
        "migration_1.1.0_a", "migration_1.1.0_b", "migration_1.5.0_shortcut"]


def test_migrations_backward_is_reversed() -> None:  # §11.3 #2
    assert find_migrations(V("1.5.0"), V("1.0.0"), MIGRATIONS) == [
        "migration_1.5.0_shortcut", "migration_1.1.0_b", "migration_1.1.0_a"]


def test_migrations_same_version() -> None:  # §11.3 #3
    assert find_migrations(V("1.2.0"), V("1.2.0"), MIGRATIONS) == []


def test_migrations_dead_end() -> None:  # §11.3 #4
    with pytest.raises(MigrationError, match=r"^Reached end of migration chain at 1\.2\.0 but target is 1\.3\.0$"):
        find_migrations(V("1.0.0"), V("1.3.0"), MIGRATIONS)


def test_migrations_example() -> None:  # §11.3 #5
    assert find_migrations(V("1.11.0"), V("1.13.0"), load("example.json").migrations) == [
        "migrate_1.12.0_foo", "migrate_1.13.0_foo", "migrate_1.13.0_bar"]


def test_migrations_release_toml_prefers_longest_hop() -> None:  # §11.3 #6
    release = parse_release((UPDOG_TESTS / "release.toml").read_text())
    assert find_migrations(V("0.0.0"), V("0.0.3"), release.migrations) == [
        "migrate_0.0.1_foo", "migrate_0.0.1_baz", "migrate_0.0.2_bar", "migrate_0.0.3_foobar"]


def test_retrieve_list_is_forward_plus_manifest() -> None:  # §11.3 #7
    names = retrieve_list(V("1.5.0"), V("1.0.0"), MIGRATIONS)
    assert names == ["migration_1.1.0_a", "migration_1.1.0_b", "migration_1.5.0_shortcut", "manifest.json"]
    assert urlencode({"migrations": ",".join(names)}) == (
        "migrations=migration_1.1.0_a%2Cmigration_1.1.0_b%2Cmigration_1.5.0_shortcut%2Cmanifest.json")


def test_self_loop_and_backward_keys_are_errors_not_hangs() -> None:  # Decision 4
    loop = {(V("1.0.0"), V("1.0.0")): ["x"]}
    with pytest.raises(MigrationError, match=r"'\(1\.0\.0, 1\.0\.0\)' does not move forward"):
        find_migrations(V("1.0.0"), V("1.1.0"), loop)
    backward = {(V("1.1.0"), V("1.0.0")): ["x"], (V("1.0.0"), V("1.1.0")): ["y"]}
    assert find_migrations(V("1.0.0"), V("1.1.0"), backward) == ["y"]


def test_real_release_chain_resolves_end_to_end() -> None:
    release = parse_release((MANIFESTS.parent / "release" / "Release.toml").read_text())
    names = find_migrations(V("0.3.1"), V("1.26.1"), release.migrations)
    assert names[0] == "migrate_v0.3.2_admin-container-v0-5-0.lz4"
    assert len(names) == len(set(names)) > 50
    assert find_migrations(V("1.26.1"), V("0.3.1"), release.migrations) == names[::-1]
