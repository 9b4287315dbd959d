"""Wave policies and the policy -> waves map (SPEC §6, §11.2)."""

from __future__ import annotations

import struct

import pytest

from repo_tool.core.instant import NANOS_PER_DAY, NANOS_PER_HOUR, NANOS_PER_MINUTE, format_instant, parse_instant
from repo_tool.core.waves import parse_policy as parse
from repo_tool.core.waves import percentage_to_seed, policy_to_waves
from repo_tool.errors import PolicyError

from .conftest import BOTTLEROCKET, REPO, WAVES_CORE_KIT

H, D, M = NANOS_PER_HOUR, NANOS_PER_DAY, NANOS_PER_MINUTE
START = parse_instant("2025-04-03T23:08:37.864228309Z")

SHIPPED = {
    "default-waves.toml": ([0, 20, 102, 307, 819, 1228, 1843], [1 * H, 4 * H, 1 * D, 2 * D, 4 * D, 5 * D, 6 * D]),
    "accelerated-waves.toml": ([0, 61, 245, 819, 1638], [1 * H, 4 * H, 8 * H, 16 * H, 1 * D]),
    "slow-roll.toml": ([0, 20, 102, 307, 819, 1228, 1843], [1 * H, 1 * D, 3 * D, 7 * D, 9 * D, 12 * D, 13 * D]),
    "ohno.toml": ([0, 102, 512, 1024, 1843], [30 * M, 60 * M, 120 * M, 150 * M, 180 * M]),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_policies_give_upstream_maps(name: str) -> None:
    keys, offsets = SHIPPED[name]
    waves = policy_to_waves(parse((REPO / "waves" / name).read_text(), name), START)
    assert list(waves) == keys
    assert list(waves.values()) == [START + o for o in offsets]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_policies_are_bottlerocket_bytes(name: str) -> None:
    assert (REPO / "waves" / name).read_bytes() == (WAVES_CORE_KIT / name).read_bytes()


def test_updog_test_policy() -> None:
    path = BOTTLEROCKET / "waves" / "updog-tests" / "default_waves.toml"
    waves = policy_to_waves(parse(path.read_text()), START)
    assert list(waves) == [0, 20, 204, 512]
    assert list(waves.values()) == [START + 12 * H, START + 1 * D, START + 3 * D, START + 6 * D]


def test_real_world_production_schedule() -> None:  # SPEC §11.2, matches a live manifest
    waves = policy_to_waves(parse((WAVES_CORE_KIT / "default-waves.toml").read_text()), START)
    assert {str(k): format_instant(v) for k, v in waves.items()} == {
        "0": "2025-04-04T00:08:37.864228309Z",
        "20": "2025-04-04T03:08:37.864228309Z",
        "102": "2025-04-04T23:08:37.864228309Z",
        "307": "2025-04-05T23:08:37.864228309Z",
        "819": "2025-04-07T23:08:37.864228309Z",
        "1228": "2025-04-08T23:08:37.864228309Z",
        "1843": "2025-04-09T23:08:37.864228309Z",
    }


def _f32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


@pytest.mark.parametrize("p", range(1, 101))
def test_integer_seed_equals_upstream_f32_arithmetic(p: int) -> None:
    """``(p as f32 / 100f32 * 2048f32) as u32``; f64 then rounding to f32 is exact for one division."""
    upstream = int(_f32(_f32(float(p)) / _f32(100.0)) * 2048.0)
    assert percentage_to_seed(p) == upstream


def policy(*entries: tuple[str, int]) -> str:
    return "".join(f"[[waves]]\nstart_after = '{o}'\nfleet_percentage = {p}\n" for o, p in entries)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (policy(("1 hour", 0)), r"^wave 1: fleet_percentage must be between 1 and 100 .*found 0$"),
        (policy(("1 hour", 50), ("2 hours", 101)), r"^wave 2: fleet_percentage must be between 1 and 100 .*101"),
        (policy(("1 hour", 50), ("2 hours", 10), ("3 hours", 100)),
         r"^wave 2 \(fleet_percentage 10\) is below wave 1's 50: .*must not decrease"),
        (policy(("1 hour", 10), ("1 hour", 100)),
         r"^wave 2 \(start_after '1 hour'\) does not start after wave 1 \('1 hour'\): start_after must increase"),
        (policy(("2 hours", 10), ("1 hour", 100)), r"^wave 2 \(start_after '1 hour'\) does not start after wave 1"),
        (policy(("2 months", 10)), r"^wave 1: start_after: cannot parse offset '2 months': unknown unit 'months'"),
        (policy(("on 3 days", 10)), "cannot parse offset 'on 3 days'"),
        (policy(("3", 10)), "cannot parse offset '3'"),
        (policy(("2025-04-03T23:08:37Z", 10)), "cannot parse offset"),
        (policy(("1 fortnight", 10)), "unknown unit 'fortnight'"),
        ("[[waves]]\nstart_after = '1 hour'\n", r"wave 1: missing key 'fleet_percentage'"),
        ("[[waves]]\nfleet_percentage = 5\n", r"wave 1: missing key 'start_after'"),
        ("[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 5\nspeed = 2\n", r"wave 1: unknown key 'speed'"),
        ("[[waves]]\nstart_after = '1 hour'\nfleet_percentage = '5'\n", "expected an integer 1-100"),
        ("[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 5.0\n", "expected an integer 1-100"),
        ("[[waves]]\nstart_after = 1\nfleet_percentage = 5\n", "expected a string"),
        ("", "missing key 'waves'"),
        ("waves = []", "non-empty array"),
        ("name = 'x'\n" + policy(("1 hour", 100)), "unknown key 'name'"),
        ("[[waves]\n", "invalid TOML"),
    ],
)
def test_bad_policies_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as info:
        parse(text)
    assert "\n" not in str(info.value)


def test_unordered_example_from_spec() -> None:
    """percentages [50, 10, 100] at [1h, 2h, 3h] build {0: 1h, 1024: 2h, 204: 3h}: unordered, named by
    the entry whose percentage decreases, not by seeds and times."""
    text = policy(("1 hour", 50), ("2 hours", 10), ("3 hours", 100))
    with pytest.raises(PolicyError, match=r"^wave 2 \(fleet_percentage 10\) is below wave 1's 50") as caught:
        parse(text)
    assert "seed" not in str(caught.value)


def test_a_decreasing_last_percentage_is_refused() -> None:
    """Stricter than upstream, which never uses the last entry's percentage (it gives no key)."""
    with pytest.raises(PolicyError, match=r"^wave 2 \(fleet_percentage 20\) is below wave 1's 40"):
        parse(policy(("1 hour", 40), ("2 hours", 20)))


def test_start_after_order_names_the_entries_that_set_the_keys() -> None:
    """Equal percentages share a key (the later entry wins, as upstream): the entries named are those
    whose times end up out of order."""
    assert parse(policy(("1 hour", 10), ("5 hours", 10), ("3 hours", 100)))  # {0: 1h, 204: 3h}: valid
    with pytest.raises(PolicyError, match=r"^wave 3 \(start_after '2 hours'\) does not start after wave 1 "
                                          r"\('3 hours'\): start_after must increase"):
        parse(policy(("3 hours", 10), ("5 hours", 10), ("2 hours", 100)))


def test_equal_percentages_collapse_later_time_wins() -> None:
    waves = policy_to_waves(parse(policy(("1 hour", 10), ("2 hours", 10), ("3 hours", 100))), START)
    assert waves == {0: START + H, 204: START + 3 * H}


def test_yaml_policy_is_the_same_structure() -> None:
    yaml_text = "waves:\n  - start_after: 30 minutes\n    fleet_percentage: 5\n  - start_after: 1 hour\n" \
                "    fleet_percentage: 100\n"
    toml_text = policy(("30 minutes", 5), ("1 hour", 100))
    assert parse(yaml_text, "p.yaml") == parse(toml_text, "p.toml")
    with pytest.raises(PolicyError, match="expected an integer"):
        parse("waves:\n  - start_after: 1 hour\n    fleet_percentage: true\n", "p.yml")
    with pytest.raises(PolicyError, match="invalid YAML"):
        parse("waves: [\n", "p.yaml")
    with pytest.raises(PolicyError, match="expected a table"):
        parse("- 1\n", "p.yaml")


def test_minute_offsets_and_optional_in() -> None:
    waves = policy_to_waves(parse(policy(("in 30 minutes", 50), ("1 week", 100))), START)
    assert waves == {0: START + 30 * M, 1024: START + 7 * D}


@pytest.mark.parametrize(
    ("text", "source", "message"),
    [
        ("1: 2\nb: 3\nwaves: []\n", "p.yaml", "unknown key 1"),
        ("waves:\n  - start_after: 1 hour\n    fleet_percentage: 5\n    1: 1\n", "p.yaml", "unknown key 1"),
        ("waves:\n  - start_after: 1 hour\n    start_after: 2 hours\n    fleet_percentage: 5\n", "p.yaml",
         "duplicate key 'start_after'"),
        ("waves: " + "[" * 5000 + "]" * 5000 + "\n", "p.yaml", "invalid YAML"),
        ("a = " + "[" * 5000 + "]" * 5000 + "\n", "p.toml", "invalid TOML"),
        ("[[waves]]\nstart_after = '1 hour'\nfleet_percentage = " + "1" * 5000 + "\n", "p.toml", "invalid TOML"),
        ("[[waves]]\nstart_after = '" + "9" * 5000 + " days'\nfleet_percentage = 5\n", "p.toml", "is not a count"),
    ],
)
def test_hostile_policies_are_clean_errors(text: str, source: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse(text, source)
