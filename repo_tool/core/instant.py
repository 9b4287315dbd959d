"""Instants and relative times, at integer-nanosecond precision (SPEC §5.3, §6.2).

An instant is an ``int``: nanoseconds since the UNIX epoch, UTC.  Python's
``datetime`` keeps only microseconds, so it is never used here: real manifests
carry 9-digit fractions and wave arithmetic must not lose them.

* :func:`parse_instant` reads what chrono 0.4's relaxed RFC 3339 parser
  (``DateTime<FixedOffset>::from_str``, used by serde for ``DateTime<Utc>``)
  reads: unpadded fields, ``T``/``t``/space separator, whitespace between
  components, any number of fraction digits (past the 9th ignored), offsets
  ``Z``/``z``/``UTC``/``±HH:MM``/``±HHMM``, signed years beyond 0..9999.
* :func:`format_instant` writes chrono's ``SecondsFormat::AutoSi`` with ``Z``,
  which is how updog, updata and pubsys serialize wave times.
* :func:`parse_offset` reads ``[in] N minute(s)|hour(s)|day(s)|week(s)``.

Deviation, on purpose: chrono keeps a leap second (``:60``) as a distinct
value; here it is the same instant as the following second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from repo_tool.errors import InstantError, OffsetError

NANOS_PER_SECOND = 1_000_000_000
NANOS_PER_MINUTE = 60 * NANOS_PER_SECOND
NANOS_PER_HOUR = 60 * NANOS_PER_MINUTE
NANOS_PER_DAY = 24 * NANOS_PER_HOUR
NANOS_PER_WEEK = 7 * NANOS_PER_DAY

# chrono's NaiveDate range.
MIN_YEAR = -262144
MAX_YEAR = 262143

# Rust's char::is_whitespace (Unicode White_Space).  Python's str.isspace also
# accepts U+001C..U+001F, which Rust does not.
RUST_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

_UNITS = {
    "minute": NANOS_PER_MINUTE,
    "minutes": NANOS_PER_MINUTE,
    "hour": NANOS_PER_HOUR,
    "hours": NANOS_PER_HOUR,
    "day": NANOS_PER_DAY,
    "days": NANOS_PER_DAY,
    "week": NANOS_PER_WEEK,
    "weeks": NANOS_PER_WEEK,
}
_U32_MAX = 2**32 - 1


def _is_digit(char: str) -> bool:
    """An ASCII digit (``str.isdigit`` also accepts other scripts' digits)."""
    return len(char) == 1 and "0" <= char <= "9"


def parse_u32(text: str) -> int | None:
    """Rust's ``u32::from_str``: an optional ``+``, ASCII digits, at most 4294967295; None if not."""
    digits = text[1:] if text.startswith("+") else text
    if not digits or len(digits) > 10 or not all(_is_digit(c) for c in digits):
        return None
    value = int(digits)
    return value if value <= _U32_MAX else None


# --- calendar arithmetic (proleptic Gregorian, any year) -------------------


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm)."""
    y = year - (1 if month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """Inverse of :func:`days_from_civil`."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


@dataclass(frozen=True)
class CivilTime:
    """A calendar date (proleptic Gregorian) and time of day, as written; fields are not range-checked."""

    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    nanos: int = 0

    def instant(self, offset: int = 0) -> int:
        """The instant of this time at UTC offset ``offset`` (seconds east; 0: the time is UTC)."""
        days = days_from_civil(self.year, self.month, self.day)
        seconds = ((days * 24 + self.hour) * 60 + self.minute) * 60 + self.second - offset
        return seconds * NANOS_PER_SECOND + self.nanos


MAX_INSTANT = CivilTime(MAX_YEAR, 12, 31, 23, 59, 59, NANOS_PER_SECOND - 1).instant()
MIN_INSTANT = CivilTime(MIN_YEAR, 1, 1).instant()
# Latest instant an offset may produce (SPEC §6.2: results beyond year 9999 are BadOffset).
MAX_OFFSET_RESULT = CivilTime(9999, 12, 31, 23, 59, 59, NANOS_PER_SECOND - 1).instant()


# --- formatting ----------------------------------------------------------


def format_instant(ns: int) -> str:
    """chrono AutoSi RFC 3339 with ``Z``: 0, 3, 6 or 9 fraction digits."""
    seconds, frac = divmod(ns, NANOS_PER_SECOND)
    days, sod = divmod(seconds, 86400)
    year, month, day = civil_from_days(days)
    hour, rem = divmod(sod, 3600)
    minute, second = divmod(rem, 60)
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+05d}"
    if frac == 0:
        frac_text = ""
    elif frac % 1_000_000 == 0:
        frac_text = f".{frac // 1_000_000:03d}"
    elif frac % 1_000 == 0:
        frac_text = f".{frac // 1_000:06d}"
    else:
        frac_text = f".{frac:09d}"
    return f"{year_text}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{frac_text}Z"


def format_whole_seconds(ns: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the form TUF ``expires`` must take (fraction dropped)."""
    return format_instant(ns - ns % NANOS_PER_SECOND)


# --- parsing -------------------------------------------------------------


def _invalid(text: str, why: str) -> InstantError:
    return InstantError(f"invalid RFC 3339 time {text!r}: {why}")


class _Scanner:
    """A cursor over the text with chrono's scanning primitives."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> InstantError:
        return _invalid(self.text, why)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in RUST_WHITESPACE:
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def literal(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r} {what}")
        self.pos += 1

    def digits(self, min_digits: int, max_digits: int | None, what: str) -> tuple[int, int]:
        """Read between min and max ASCII digits; return (value, count)."""
        start = self.pos
        limit = len(self.text) if max_digits is None else min(len(self.text), start + max_digits)
        end = start
        while end < limit and _is_digit(self.text[end]):
            end += 1
        if end - start < min_digits:
            raise self.fail(f"expected digits for the {what}")
        if end - start > 18:  # chrono reads into an i64 and reports OUT_OF_RANGE
            raise self.fail(f"{what} out of range")
        self.pos = end
        return int(self.text[start:end]), end - start

    def number(self, max_digits: int, what: str) -> int:
        self.skip_space()
        return self.digits(1, max_digits, what)[0]

    def separated(self, separator: str, what: str) -> int:
        """chrono's ``Space(""), Literal(sep), Numeric(.., 2 digits)`` item sequence."""
        self.skip_space()
        self.literal(separator, f"before the {what}")
        return self.number(2, what)


# The form every writer uses (chrono AutoSi, jiff, pubsys): parsed without the scanner.
_CANONICAL = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z")


def parse_instant(text: str) -> int:
    """Parse like chrono's relaxed RFC 3339 parser and return UTC nanoseconds."""
    match = _CANONICAL.fullmatch(text)
    if match is None:
        return parse_instant_relaxed(text)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return _assemble(text, CivilTime(year, month, day, hour, minute, second, nanos), 0)


def parse_instant_relaxed(text: str) -> int:
    """The general scanner behind :func:`parse_instant` (any spelling chrono accepts)."""
    sc = _Scanner(text)
    # Date: year (1-4 digits, or a sign and any number), '-', month, '-', day.
    sc.skip_space()
    if sc.peek() in ("-", "+"):
        negative = sc.peek() == "-"
        sc.pos += 1
        year = sc.digits(1, None, "year")[0]
        year = -year if negative else year
    else:
        year = sc.digits(1, 4, "year")[0]
    month = sc.separated("-", "month")
    day = sc.separated("-", "day")
    if sc.peek() not in ("T", "t", " "):
        raise sc.fail("expected 'T' or a space between date and time")
    sc.pos += 1
    hour = sc.number(2, "hour")
    minute = sc.separated(":", "minute")
    second = sc.separated(":", "second")
    nanos = 0
    if sc.peek() == ".":
        sc.pos += 1
        value, count = sc.digits(1, 9, "fraction")
        nanos = value * 10 ** (9 - count)
        while _is_digit(sc.peek()):
            sc.pos += 1
    sc.skip_space()
    offset = _parse_offset_suffix(sc)
    if sc.text[sc.pos :].strip("".join(RUST_WHITESPACE)):
        raise sc.fail("unexpected text after the UTC offset")
    return _assemble(text, CivilTime(year, month, day, hour, minute, second, nanos), offset)


def _assemble(text: str, parts: CivilTime, offset: int) -> int:
    """Range-check the fields as chrono's ``Parsed::to_datetime`` does and build the instant."""
    year, month, day = parts.year, parts.month, parts.day
    if not 1 <= month <= 12:
        raise _invalid(text, f"month {month} out of range")
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _invalid(text, f"year {year} out of range")
    if not 1 <= day <= _days_in_month(year, month):
        raise _invalid(text, f"day {day} out of range for {year:04d}-{month:02d}")
    if parts.hour > 23 or parts.minute > 59 or parts.second > 60:
        raise _invalid(text, "time of day out of range")
    if abs(offset) >= 86400:
        raise _invalid(text, "UTC offset out of range")
    ns = parts.instant(offset)
    if not MIN_INSTANT <= ns <= MAX_INSTANT:
        raise _invalid(text, "out of range")
    return ns


def _parse_offset_suffix(sc: _Scanner) -> int:
    """chrono ``scan::timezone_offset`` with Zulu allowed and ``UTC`` accepted; seconds east."""
    rest = sc.text[sc.pos :]
    if rest[:3].upper() == "UTC":
        sc.pos += 3
        return 0
    head = sc.peek()
    if head in ("Z", "z"):
        sc.pos += 1
        return 0
    if head not in ("+", "-", "\u2212"):
        raise sc.fail("expected a UTC offset (Z, +HH:MM or -HH:MM)")
    sign = 1 if head == "+" else -1
    sc.pos += 1
    hh = sc.text[sc.pos : sc.pos + 2]
    if len(hh) < 2 or not all(_is_digit(c) for c in hh):
        raise sc.fail("expected two digits of offset hours")
    sc.pos += 2
    while sc.peek() == ":" or (sc.peek() != "" and sc.peek() in RUST_WHITESPACE):
        sc.pos += 1
    mm = sc.text[sc.pos : sc.pos + 2]
    if len(mm) < 2 or not all(_is_digit(c) for c in mm) or mm[0] > "5":
        raise sc.fail("expected two digits of offset minutes")
    sc.pos += 2
    return sign * (int(hh) * 3600 + int(mm) * 60)


def _rust_split_whitespace(text: str) -> list[str]:
    return [tok for tok in re.split("[" + re.escape("".join(sorted(RUST_WHITESPACE))) + "]+", text) if tok]


def parse_offset(text: str) -> int:
    """Parse ``[in] N unit`` (SPEC §6.2) into nanoseconds; raise :class:`OffsetError`."""
    tokens = _rust_split_whitespace(text)
    if len(tokens) == 3 and tokens[0] == "in":
        tokens = tokens[1:]
    if len(tokens) != 2:
        raise OffsetError(
            f"cannot parse offset {text!r}: expected '[in] N minutes|hours|days|weeks'"
        )
    count_text, unit = tokens
    count = parse_u32(count_text)
    if count is None:
        raise OffsetError(f"cannot parse offset {text!r}: {count_text!r} is not a count")
    if unit not in _UNITS:
        raise OffsetError(
            f"cannot parse offset {text!r}: unknown unit {unit!r} "
            "(use minutes, hours, days or weeks)"
        )
    return count * _UNITS[unit]


def add_offset(start: int, offset_text: str) -> int:
    """``start + parse_offset(offset_text)``; a result past year 9999 is an :class:`OffsetError`."""
    result = start + parse_offset(offset_text)
    if result > MAX_OFFSET_RESULT:
        raise OffsetError(f"offset {offset_text!r} from {format_instant(start)} is past year 9999")
    return result


def parse_time_arg(text: str, now: int) -> int:
    """A command-line instant: ``now``, RFC 3339, or an offset counted from ``now``."""
    stripped = text.strip()
    if stripped == "now":
        return now
    if ":" in stripped:
        return parse_instant(text)  # an instant always has HH:MM, an offset never does
    try:
        return add_offset(now, text)
    except OffsetError:
        raise InstantError(
            f"invalid time {text!r}: expected 'now', an RFC 3339 time such as "
            "2025-04-03T23:08:37Z, or an offset such as 'in 2 hours'"
        ) from None


def format_duration(ns: int, resolution: int = 1) -> str:
    """A short human form of a span, e.g. ``1d 4h`` or ``30m``, rounded to ``resolution`` ns."""
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    ns = (ns + resolution // 2) // resolution * resolution
    parts = []
    for unit, size in (("w", NANOS_PER_WEEK), ("d", NANOS_PER_DAY), ("h", NANOS_PER_HOUR), ("m", NANOS_PER_MINUTE)):
        count, ns = divmod(ns, size)
        if count:
            parts.append(f"{count}{unit}")
    if ns:
        seconds = ns / NANOS_PER_SECOND
        parts.append(f"{seconds:g}s")
    return sign + (" ".join(parts) if parts else "0s")


def format_two_units(ns: int) -> str:
    """A span as its two most significant units, days the largest, rounded *down* (never more than
    is left): ``6d 23h``, ``13d 0h``, ``45m 10s``, ``364d 23h``; under a minute just ``59s`` (``0s``
    under a second).  A negative span is its magnitude, so rounded towards zero, with ``-`` in front."""
    sign = "-" if ns < 0 else ""
    left = abs(ns)
    units = (("d", NANOS_PER_DAY), ("h", NANOS_PER_HOUR), ("m", NANOS_PER_MINUTE), ("s", NANOS_PER_SECOND))
    for index, (unit, size) in enumerate(units[:-1]):
        if left >= size:
            next_unit, next_size = units[index + 1]
            return f"{sign}{left // size}{unit} {left % size // next_size}{next_unit}"
    return f"{sign}{left // NANOS_PER_SECOND}s"
