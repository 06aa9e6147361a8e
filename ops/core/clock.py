"""Time: the one `utc_now`, and the one way to read a time zone name."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ZONE_EXPECTED = "expected an IANA time zone name such as Europe/Istanbul or UTC"


def utc_now() -> dt.datetime:
    """Now, timezone-aware in UTC. Code takes a `clock` defaulting to this, so tests can move time."""
    return dt.datetime.now(dt.timezone.utc)


def parse_zone(value: Any) -> ZoneInfo:
    """A `ZoneInfo` from a zone name (or a ZoneInfo). ValueError with ZONE_EXPECTED otherwise."""
    if isinstance(value, ZoneInfo):
        return value
    name = str(value).strip() if value is not None else ""
    if not name:
        raise ValueError(ZONE_EXPECTED)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(ZONE_EXPECTED) from None


def local_date(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The calendar day `moment` falls on in `zone` (days are cut in the founder's zone)."""
    return moment.astimezone(zone).date()
