"""Instants at nanosecond precision: chrono's relaxed reader and AutoSi writer (SPEC §5.3, §6.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core.instant import (
    MAX_INSTANT,
    MIN_INSTANT,
    NANOS_PER_DAY,
    NANOS_PER_HOUR,
    NANOS_PER_MINUTE,
    NANOS_PER_WEEK,
    CivilTime,
    add_offset,
    days_from_civil,
    format_instant,
    format_two_units,
    format_whole_seconds,
    parse_instant,
    parse_instant_relaxed,
    parse_offset,
    parse_time_arg,
)
from repo_tool.errors import InstantError, OffsetError

T2000 = CivilTime(2000, 1, 1).instant()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-04-03T23:08:37.864228309Z", "2025-04-03T23:08:37.864228309Z"),
        ("2019-8-06T15:00:00Z", "2019-08-06T15:00:00Z"),  # SPEC §11.5 #2
        ("2000-01-01T00:00:00.12Z", "2000-01-01T00:00:00.120Z"),  # §11.5 #3: AutoSi, 3 digits
        ("2000-01-01T00:00:00.120000Z", "2000-01-01T00:00:00.120Z"),
        ("2000-01-01T00:00:00.000001Z", "2000-01-01T00:00:00.000001Z"),
        ("2000-01-01T00:00:00.5Z", "2000-01-01T00:00:00.500Z"),
        ("2000-01-01T00:00:00.4504Z", "2000-01-01T00:00:00.450400Z"),
        ("2000-01-01T00:00:00.000Z", "2000-01-01T00:00:00Z"),
        ("2000-01-01T00:00:00.1234567891999Z", "2000-01-01T00:00:00.123456789Z"),  # digits past 9th ignored
        ("2000-01-01t00:00:00z", "2000-01-01T00:00:00Z"),
        ("2000-01-01 00:00:00 UTC", "2000-01-01T00:00:00Z"),
        ("2000-01-01T00:00:00utc", "2000-01-01T00:00:00Z"),
        ("2000-01-01T01:00:00+01:00", "2000-01-01T00:00:00Z"),
        ("2000-01-01T00:00:00-0130", "2000-01-01T01:30:00Z"),
        ("2000-01-01T00:00:00\u221201:00", "2000-01-01T01:00:00Z"),  # U+2212 minus sign
        ("2012-  12-12T12:  12:12Z", "2012-12-12T12:12:12Z"),  # chrono's doc example
        ("  2012-12-12T12:12:12Z  ", "2012-12-12T12:12:12Z"),
        ("99-1-1T0:0:0Z", "0099-01-01T00:00:00Z"),
        ("-0001-01-01T00:00:00Z", "-0001-01-01T00:00:00Z"),
        ("+10000-01-01T00:00:00Z", "+10000-01-01T00:00:00Z"),
        ("2016-02-29T00:00:00Z", "2016-02-29T00:00:00Z"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
    ],
)
def test_relaxed_rfc3339_round_trip(text: str, expected: str) -> None:
    assert format_instant(parse_instant(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2000-01-01",
        "2000-01-01T00:00:00",  # offset is mandatory
        "2000-01-01X00:00:00Z",
        "2000-01-01T00:00:00.Z",
        "02000-01-01T00:00:00Z",  # five digits need a sign
        "2000-13-01T00:00:00Z",
        "2000-02-30T00:00:00Z",
        "2015-02-29T00:00:00Z",
        "2000-01-00T00:00:00Z",
        "2000-01-01T24:00:00Z",
        "2000-01-01T00:60:00Z",
        "2000-01-01T00:00:61Z",
        "2000-01-01T00:00:00+24:00",
        "2000-01-01T00:00:00+01:60",
        "2000-01-01T00:00:00+1",
        "2000-01-01T00:00:00Z junk",
        "2000-01-01T00:00:00ZZ",
        "\u0662000-01-01T00:00:00Z",  # Arabic-Indic digit is not ASCII
        "+300000-01-01T00:00:00Z",
    ],
)
def test_invalid_instants_are_clear_errors(text: str) -> None:
    with pytest.raises(InstantError, match="invalid RFC 3339 time"):
        parse_instant(text)


def test_autosi_fraction_widths() -> None:
    assert format_instant(T2000 + 120_000_000) == "2000-01-01T00:00:00.120Z"
    assert format_instant(T2000 + 864_228_309) == "2000-01-01T00:00:00.864228309Z"
    assert format_instant(T2000 + 1_000) == "2000-01-01T00:00:00.000001Z"
    assert format_instant(T2000 + 1) == "2000-01-01T00:00:00.000000001Z"
    assert format_whole_seconds(T2000 + 999_999_999) == "2000-01-01T00:00:00Z"


def test_calendar_matches_known_days() -> None:
    assert days_from_civil(1970, 1, 1) == 0
    assert days_from_civil(2000, 3, 1) == 11017
    assert days_from_civil(1969, 12, 31) == -1


@given(st.integers(min_value=MIN_INSTANT, max_value=MAX_INSTANT))
def test_format_parse_round_trip(ns: int) -> None:
    assert parse_instant(format_instant(ns)) == ns


@given(st.text(alphabet="0123456789-+:.TtZz UTC\u2212", max_size=40))
def test_parser_never_crashes(text: str) -> None:
    try:
        value = parse_instant(text)
    except InstantError:
        return
    assert MIN_INSTANT <= value <= MAX_INSTANT


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1 hour", NANOS_PER_HOUR),
        ("4 hours", 4 * NANOS_PER_HOUR),
        ("in 3 days", 3 * NANOS_PER_DAY),  # §11.2: valid
        ("30 minutes", 30 * NANOS_PER_MINUTE),  # Decision 2: minutes
        ("1 minutes", NANOS_PER_MINUTE),  # singular/plural not checked
        ("2 week", 2 * NANOS_PER_WEEK),
        ("+5 days", 5 * NANOS_PER_DAY),
        ("  in   2\tdays ", 2 * NANOS_PER_DAY),
        ("4294967295 minutes", 4294967295 * NANOS_PER_MINUTE),
    ],
)
def test_offsets(text: str, ns: int) -> None:
    assert parse_offset(text) == ns


@pytest.mark.parametrize(
    "text",
    ["2 months", "on 3 days", "3", "", "in 3", "3 Days", "-3 days", "3.5 days", "4294967296 minutes",
     "2025-04-03T23:08:37Z", "in in 3 days", "3 days ago"],
)
def test_bad_offsets(text: str) -> None:
    with pytest.raises(OffsetError, match=r"^cannot parse offset"):
        parse_offset(text)


def test_offset_past_year_9999_is_bad() -> None:
    start = CivilTime(9999, 12, 1).instant()
    with pytest.raises(OffsetError, match="past year 9999"):
        add_offset(start, "5 weeks")
    assert add_offset(start, "1 day") == CivilTime(9999, 12, 2).instant()


def test_command_line_times() -> None:
    now = CivilTime(2025, 1, 1, 12).instant()
    assert parse_time_arg("now", now) == now
    assert parse_time_arg("in 2 hours", now) == now + 2 * NANOS_PER_HOUR
    assert parse_time_arg("2 hours", now) == now + 2 * NANOS_PER_HOUR
    assert parse_time_arg("2025-01-02T00:00:00Z", now) == CivilTime(2025, 1, 2).instant()
    with pytest.raises(InstantError, match="day 30 out of range"):
        parse_time_arg("2025-02-30T00:00:00Z", now)
    with pytest.raises(InstantError, match="expected 'now'"):
        parse_time_arg("tomorrow", now)
    assert parse_time_arg("+10000-01-01T00:00:00Z", now) == CivilTime(10000, 1, 1).instant()
    assert parse_time_arg("-0001-01-01T00:00:00Z", now) == CivilTime(-1, 1, 1).instant()
    assert parse_time_arg("+5 days", now) == now + 5 * NANOS_PER_DAY
    with pytest.raises(InstantError, match="expected 'now'"):
        parse_time_arg("1" * 5000 + " days", now)


@given(st.integers(min_value=0, max_value=CivilTime(9999, 12, 31, 23, 59, 59, 999_999_999).instant()))
def test_fast_path_agrees_with_the_scanner(ns: int) -> None:
    text = format_instant(ns)
    assert parse_instant(text) == parse_instant_relaxed(text) == ns


@pytest.mark.parametrize("text", ["2000-02-30T00:00:00Z", "2000-01-01T24:00:00Z", "2000-00-01T00:00:00Z"])
def test_fast_path_range_checks(text: str) -> None:
    with pytest.raises(InstantError):
        parse_instant(text)
    with pytest.raises(InstantError):
        parse_instant_relaxed(text)


SECOND = NANOS_PER_MINUTE // 60


@pytest.mark.parametrize(
    ("ns", "expected"),
    [
        (6 * NANOS_PER_DAY + 23 * NANOS_PER_HOUR + 59 * NANOS_PER_MINUTE + 30 * SECOND, "6d 23h"),  # not 1w
        (13 * NANOS_PER_DAY, "13d 0h"),
        (13 * NANOS_PER_DAY + 59 * NANOS_PER_MINUTE, "13d 0h"),
        (2 * NANOS_PER_WEEK, "14d 0h"),  # days are the largest unit
        (365 * NANOS_PER_DAY - 1, "364d 23h"),
        (45 * NANOS_PER_MINUTE + 10 * SECOND + SECOND - 1, "45m 10s"),
        (NANOS_PER_HOUR, "1h 0m"),
        (NANOS_PER_DAY - 1, "23h 59m"),
        (NANOS_PER_MINUTE - 1, "59s"),
        (SECOND - 1, "0s"),
        (0, "0s"),
        (-(NANOS_PER_DAY + NANOS_PER_HOUR + 1), "-1d 1h"),  # the magnitude rounded down
    ],
)
def test_format_two_units_rounds_down(ns: int, expected: str) -> None:
    assert format_two_units(ns) == expected


_UNIT_NS = {"d": NANOS_PER_DAY, "h": NANOS_PER_HOUR, "m": NANOS_PER_MINUTE, "s": SECOND}


@given(st.integers(min_value=0, max_value=10**22))
def test_format_two_units_never_shows_more_than_is_left(ns: int) -> None:
    parts = format_two_units(ns).split()
    shown = sum(int(part[:-1]) * _UNIT_NS[part[-1]] for part in parts)
    smallest = _UNIT_NS[parts[-1][-1]]
    assert shown <= ns < shown + smallest
    assert len(parts) in (1, 2) and (len(parts) == 2 or parts[0].endswith("s"))
