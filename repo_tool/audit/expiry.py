"""Expiry status, one rule for ``audit`` and ``check-expirations``: expired, expiring soon, or ok.

An expiry at or before the instant ``at`` is expired (nothing is left of it); one at or before
``at + within`` expires soon (upstream pubsys flags expiry <= the limit); any later one is ok.
Each command keeps its own labels (``audit --json`` says ``expired``/``soon``/``ok``,
``check-expirations`` says ``EXPIRED``/``EXPIRES SOON``/``OK``); the rule is only here.
Pure: no clock is read here (the caller passes ``at``) and no repository is read.
"""

from __future__ import annotations

import enum

from repo_tool.core.instant import NANOS_PER_DAY, NANOS_PER_HOUR, NANOS_PER_MINUTE


class Expiry(enum.Enum):
    """Where an expiry stands against an instant and a window (the value: ``audit``'s label)."""

    OK = "ok"
    SOON = "soon"
    EXPIRED = "expired"


def expiry_status(expires: int, at: int, within: int) -> Expiry:
    """``expires`` (ns) seen at ``at`` (ns) with a warning window of ``within`` ns."""
    if expires <= at:
        return Expiry.EXPIRED
    if expires <= at + within:
        return Expiry.SOON
    return Expiry.OK


def remaining_text(ns: int) -> str:
    """``6 days 23 hours`` / ``expired 2 days ago`` / ``45 minutes``."""
    span = abs(ns)
    days, rest = divmod(span, NANOS_PER_DAY)
    hours, rest = divmod(rest, NANOS_PER_HOUR)
    minutes = rest // NANOS_PER_MINUTE
    parts = [f"{days} day{'s' * (days != 1)}"] if days else []
    if hours and len(parts) < 2:
        parts.append(f"{hours} hour{'s' * (hours != 1)}")
    if not days and (minutes or not parts):
        parts.append(f"{minutes} minute{'s' * (minutes != 1)}")
    text = " ".join(parts)
    return f"expired {text} ago" if ns < 0 else text
